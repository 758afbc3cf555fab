// Package outlook holds outlook.email_received, a poller of a Microsoft
// 365 (Outlook) mail folder over Microsoft Graph: each message received
// after the recipe started starts one run, once, across restarts.
package outlook
