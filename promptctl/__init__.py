"""``promptctl``: the command line of prompt-rollouts."""
