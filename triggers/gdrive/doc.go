// Package gdrive is the gdrive.file_created trigger: a poller on Google
// Drive's changes feed (changes.list from a start page token) that starts
// a run for each file created after the recipe began watching, in a
// folder and of a type when the recipe says so.
package gdrive
