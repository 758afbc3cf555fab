// Package gcal is the gcal.event_created trigger: a poller on Google
// Calendar's incremental sync (events.list with a sync token) that starts
// a run for each event created after the recipe began watching.
package gcal
