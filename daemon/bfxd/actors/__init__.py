"""The daemon's actors: each one a function ``run_<actor>(*, channels…, task_status)`` run in a nursery."""
