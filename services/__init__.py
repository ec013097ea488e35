"""BetterWorld mesh backend: gRPC services, shared runtime and tooling."""
