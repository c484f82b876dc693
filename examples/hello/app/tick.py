"""A scheduled task (spec.schedules): one line in its pod's log, each run."""

import datetime

print(f"tick from the schedule at {datetime.datetime.now(datetime.timezone.utc).isoformat()}", flush=True)
