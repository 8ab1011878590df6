"""What the console and the CLI both do: the orchestration of a preview and of a rollout's
start, one implementation each, called by `commands/` and by the console's data layer."""
