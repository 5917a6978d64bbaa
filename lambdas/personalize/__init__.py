"""Lambda steps of the Personalize workflow: describe-or-create over one core (core.py).

Each module declares one resource family; handlers.py is the Lambda entry point."""
