{{/*
Chart name, cut to 63 characters (DNS label).
*/}}
{{- define "prompt-rollouts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name contains it; cut
to 63 characters. Component objects append a suffix: keep the release name short.
*/}}
{{- define "prompt-rollouts.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A component's object name: fullname-component, still within 63 characters.
Call as (include "prompt-rollouts.componentName" (list . "server")).
*/}}
{{- define "prompt-rollouts.componentName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $base := include "prompt-rollouts.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $component }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "prompt-rollouts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "prompt-rollouts.labels" -}}
helm.sh/chart: {{ include "prompt-rollouts.chart" . }}
{{ include "prompt-rollouts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: prompt-rollouts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the release (add app.kubernetes.io/component per workload).
*/}}
{{- define "prompt-rollouts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prompt-rollouts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: (list . "server").
*/}}
{{- define "prompt-rollouts.componentLabels" -}}
{{ include "prompt-rollouts.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "prompt-rollouts.componentSelectorLabels" -}}
{{ include "prompt-rollouts.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
ServiceAccount names: (list . "server") or (list . "controller").
*/}}
{{- define "prompt-rollouts.serviceAccountName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $sa := (index $root.Values $component).serviceAccount }}
{{- if $sa.create }}
{{- default (include "prompt-rollouts.componentName" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/*
The image: repository@digest, else repository:tag (tag defaults to the appVersion).
*/}}
{{- define "prompt-rollouts.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Name of the kopf peering object (controller.replicas >= 2).
*/}}
{{- define "prompt-rollouts.peeringName" -}}
{{- default (include "prompt-rollouts.fullname" .) .Values.controller.peeringName }}
{{- end }}

{{/*
Service URLs of the bundled stores.
*/}}
{{- define "prompt-rollouts.qdrantUrl" -}}
{{- printf "http://%s:6333" (include "prompt-rollouts.componentName" (list . "qdrant")) }}
{{- end }}

{{- define "prompt-rollouts.redisUrl" -}}
{{- printf "redis://%s:6379/0" (include "prompt-rollouts.componentName" (list . "redis")) }}
{{- end }}

{{/*
topologySpreadConstraints with labelSelector filled in where absent: (list . "server").
*/}}
{{- define "prompt-rollouts.topologySpreadConstraints" -}}
{{- $root := index . 0 }}
{{- $constraints := list }}
{{- range (index $root.Values (index . 1)).topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "prompt-rollouts.componentSelectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
{{- toYaml $constraints }}
{{- end }}

{{/*
The Secret holding the API keys file: the one named in auth.existingSecret, or the chart's.
*/}}
{{- define "prompt-rollouts.apiKeysSecret" -}}
{{- .Values.auth.existingSecret | default (include "prompt-rollouts.componentName" (list . "api-keys")) }}
{{- end }}

{{/*
The Secret holding IDEMPOTENCY_SECRET: idempotency.existingSecret, or the chart's.
*/}}
{{- define "prompt-rollouts.idempotencySecret" -}}
{{- .Values.idempotency.existingSecret | default (include "prompt-rollouts.componentName" (list . "idempotency")) }}
{{- end }}

{{/*
WEB_CONCURRENCY of the server: server.workers when set; else one worker per requested CPU
(ceil of server.resources.requests.cpu, "500m" or "2"), between 1 and server.maxWorkers.
More than one only when the service would run them: a Qdrant server (the embedded store in
the pod's folder admits one process) and Redis (idempotency keys, feedback ids and tenant
quotas must be shared by the workers). An explicit server.workers above 1 without both
fails the render with the reason; the automatic choice falls back to 1.
*/}}
{{- define "prompt-rollouts.serverWorkers" -}}
{{- $server := .Values.server -}}
{{- $qdrant := or .Values.qdrant.bundled.enabled .Values.qdrant.url -}}
{{- $redis := or .Values.redis.bundled.enabled .Values.redis.existingSecret .Values.redis.url -}}
{{- if not (kindIs "invalid" $server.workers) -}}
{{- $workers := int $server.workers -}}
{{- if and (gt $workers 1) (not (and $qdrant $redis)) -}}
{{- fail (printf "server.workers=%d needs a Qdrant server (qdrant.url or qdrant.bundled.enabled) and Redis (redis.url, redis.existingSecret or redis.bundled.enabled): the service refuses WEB_CONCURRENCY above 1 without them (the embedded store admits one process; idempotency keys, feedback ids and tenant quotas must be shared)" $workers) -}}
{{- end -}}
{{- $workers -}}
{{- else -}}
{{- $cpu := "" -}}
{{- with $server.resources -}}{{- with .requests -}}{{- $cpu = toString (.cpu | default "") -}}{{- end -}}{{- end -}}
{{- $milli := 0 -}}
{{- if hasSuffix "m" $cpu -}}
{{- $milli = int (trimSuffix "m" $cpu) -}}
{{- else if $cpu -}}
{{- $milli = int (ceil (mulf (float64 $cpu) 1000)) -}}
{{- end -}}
{{- $workers := max 1 (min (div (add $milli 999) 1000) (int $server.maxWorkers)) -}}
{{- if and $qdrant $redis -}}{{ $workers }}{{- else -}}1{{- end -}}
{{- end -}}
{{- end }}
