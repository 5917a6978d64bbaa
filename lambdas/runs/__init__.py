"""The run's own steps: the plan (the state machine's first state) and the upload trigger."""
