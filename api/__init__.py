"""Kubernetes API types of prompt-rollouts (kubebuilder's ``api/<version>`` layout)."""
