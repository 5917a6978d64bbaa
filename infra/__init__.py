"""CDK constructs and the stack: what gets deployed. Nothing here runs in AWS."""
