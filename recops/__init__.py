"""The product's runtime package: code and data shared by the stack (infra) and the local account."""
