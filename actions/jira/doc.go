// Package jira is Jira Cloud's actions: jira.create_issue,
// jira.transition_issue, jira.add_comment and jira.update_issue, through
// go-jira's client over the connection's client and Jira's REST API v3
// (descriptions and comments as Atlassian documents made from plain text).
package jira
