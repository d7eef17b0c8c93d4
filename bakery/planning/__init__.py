"""How the plan is built, one concern per module; `bakery.plan` is the entry point."""
