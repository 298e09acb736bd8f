package node

// RemoveUserFromAllGroups completes gateway.UserGroupStore for the REST API's
// "remove a user from all groups".
func (u userGroups) RemoveUserFromAllGroups(hub, user string) error {
	return u.db.RemoveUserFromAllGroups(hub, user)
}
