"""The Pulumi policy pack: ``pulumi preview|up --policy-pack policy`` (see README, "Security")."""
