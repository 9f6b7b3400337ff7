{{/*
The controller's NOTIFY_* environment (docs/rollouts.md, "Notifications"). The HMAC key,
and optionally the URLs, come from an existing Secret through secretKeyRef: never from values.
*/}}
{{- define "prompt-rollouts.notifyEnv" -}}
{{- $n := .Values.controller.notifications -}}
{{- $secret := $n.secret | default dict -}}
{{- $fromSecret := and $secret.name $secret.urlsKey -}}
{{- if and $n.urls $secret.urlsKey -}}
{{- fail "controller.notifications: set urls or secret.urlsKey, not both" -}}
{{- end -}}
{{- if and $secret.urlsKey (not $secret.name) -}}
{{- fail "controller.notifications.secret.urlsKey needs secret.name (the Secret holding the URLs)" -}}
{{- end -}}
{{- if or $n.urls $fromSecret }}
{{- if and (eq $n.format "json") (not $secret.name) -}}
{{- fail "controller.notifications: secret.name is required with webhook URLs (the HMAC key that signs each event; only format slack may go unsigned)" -}}
{{- end }}
{{- if $fromSecret }}
- name: NOTIFY_WEBHOOK_URLS
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.urlsKey }}
{{- else }}
- name: NOTIFY_WEBHOOK_URLS
  value: {{ join "," $n.urls | quote }}
{{- end }}
{{- if $secret.name }}
- name: NOTIFY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.key }}
{{- end }}
- name: NOTIFY_FORMAT
  value: {{ $n.format | quote }}
{{- with $n.dashboardUrl }}
- name: NOTIFY_DASHBOARD_URL
  value: {{ . | quote }}
{{- end }}
- name: NOTIFY_QUEUE_SIZE
  value: {{ $n.queueSize | quote }}
- name: NOTIFY_MAX_ATTEMPTS
  value: {{ $n.maxAttempts | quote }}
- name: NOTIFY_TIMEOUT_SECONDS
  value: {{ $n.timeoutSeconds | quote }}
- name: NOTIFY_BACKOFF_SECONDS
  value: {{ $n.backoffSeconds | quote }}
{{- end }}
{{- end -}}
