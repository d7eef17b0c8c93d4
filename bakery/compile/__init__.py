"""Plan -> AWS artefacts that need no aws_cdk: state machine definitions and names."""
