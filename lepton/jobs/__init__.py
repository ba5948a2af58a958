"""The job system: one `Job` row per piece of background work, released by the dispatcher."""
