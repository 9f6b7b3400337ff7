"""Rehearsal components: stand-ins that let ``promptctl rehearse`` run a whole rollout on
one machine (and that the test suite uses too).

- `rehearsal.kube`: a Kubernetes API emulator (kmock, with the shims kopf and kubectl need)
  and `rehearsal.admission`, its schema and CEL admission for the PromptVersion CRD. The
  emulator's parts: `rehearsal.kmock_patches` (every patch to kmock, each with why; routing
  and reads), `rehearsal.kube_store` (declarations and writes), `rehearsal.kube_rules`
  (the API server's rules, pure).
  **A rehearsal stand-in, never a production API server**: no authorisation, no
  persistence, no high availability; everything lives in one process's memory and ends
  with it. It binds 127.0.0.1 only.
- `rehearsal.prometheus`: starts the real ``prometheus`` binary (Debian package
  ``prometheus``) with a throwaway configuration and storage.

They need the ``rehearse`` extra (``pip install 'prompt-rollouts[rehearse]'``: kmock,
cel-python, jsonpatch); `rehearsal.requirements` says what is missing.
"""
