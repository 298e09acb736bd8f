# Switchboard's container image: the statically linked binary, CA
# certificates for HTTPS upstreams, nothing else (no shell, no libc). No base
# image is pulled, so it builds offline; `make image` builds the binaries it
# copies (CGO_ENABLED=0) into bin/image/ and then this file:
#
#   make image                      # localhost/switchboard and localhost/switchboard-chat-fn
#   podman run --rm -p 8080:8080 -v switchboard-data:/data localhost/switchboard
#
# The build context is the repository; .dockerignore sends only bin/image/.
# docs/cluster.md#containers shows three nodes with compose.yaml.

# The example chat function (examples/functions/chat), the upstream of
# compose.yaml: `--target chat-fn`.
FROM scratch AS chat-fn
COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/image/chat-fn /chat-fn
# The browser build of @microsoft/signalr, for the chat page.
COPY bin/image/web /web
USER 65532:65532
EXPOSE 3000
ENTRYPOINT ["/chat-fn", "-listen", ":3000", "-web", "/web"]

# The gateway, the default target.
FROM scratch AS gateway
COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# /data must exist owned by the node's user: a scratch image has no mkdir or
# chown to run, so an empty folder is copied in with its owner. A volume
# mounted there starts with that owner.
COPY --chown=65532:65532 bin/image/data /data
COPY bin/image/switchboard /switchboard
# Nobody's: no root inside the container, and a number, so no /etc/passwd is needed.
USER 65532:65532
VOLUME /data
WORKDIR /data
# Settings are SWITCHBOARD_<FLAG_NAME> variables, flags or a file named by
# SWITCHBOARD_CONFIG (docs/configuration.md); these only change defaults.
ENV SWITCHBOARD_LISTEN=:8080 \
    SWITCHBOARD_DB=/data/switchboard.db
# HTTP, then the embedded NATS server's client and route ports when set
# (--nats-port 4222 --nats-cluster-port 6222).
EXPOSE 8080 4222 6222
ENTRYPOINT ["/switchboard"]
CMD ["serve"]
