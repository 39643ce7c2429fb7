"""Tests of the Kubernetes launcher, the image and the manifests under k8s/."""
