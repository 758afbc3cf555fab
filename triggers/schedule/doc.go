// Package schedule is the schedule.cron trigger: recipes that run on a
// cron schedule in a time zone.
package schedule
