"""The worker process: consumes the job queues and runs scheduled sweeps."""
