{{/* Chart name, cut to the 63 characters a label value may hold. */}}
{{- define "tgworkers.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name: fullnameOverride, else "<release>-<name>" (the release alone when it already holds the name). */}}
{{- define "tgworkers.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tgworkers.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries (Kubernetes recommended labels). */}}
{{- define "tgworkers.labels" -}}
helm.sh/chart: {{ include "tgworkers.chart" . }}
{{ include "tgworkers.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tgworkers
{{- end -}}

{{- define "tgworkers.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tgworkers.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tgworkers.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tgworkers.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image: the tag defaults to the chart's appVersion. */}}
{{- define "tgworkers.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A processor's name in PARTITIONS_<P>-style variables (registry.Processor.env_name). */}}
{{- define "tgworkers.envName" -}}
{{- . | replace "." "_" | replace "-" "_" | upper -}}
{{- end -}}

{{/*
Processors that declare schedules (cron ticks fire from their workers): a group
running one of them never scales to zero. Kept equal to the registry by
tests/integration/dev/test_helm_chart.py.
*/}}
{{- define "tgworkers.scheduledProcessors" -}}
cfb.settle cfb.price.sample payhub.orphan_holds.gc payhub.ledger.recalc
{{- end -}}

{{/* terminationGracePeriodSeconds: SHUTDOWN_GRACE_S plus the hand-back margin, never set twice. */}}
{{- define "tgworkers.terminationGrace" -}}
{{- add (int (ceil (float64 .Values.env.SHUTDOWN_GRACE_S))) (int .Values.terminationGraceMarginSeconds) -}}
{{- end -}}

{{/* "true" when KEDA needs a TriggerAuthentication (a Secret key for Redis credentials or TLS). */}}
{{- define "tgworkers.redisAuth" -}}
{{- $k := .Values.redis.secretKeys -}}
{{- $t := .Values.redis.tls.secretKeys -}}
{{- if or $k.password $k.username $t.tls $t.ca $t.cert $t.key -}}true{{- end -}}
{{- end -}}

{{/*
A KEDA trigger's name for partition i of a queue: (list queue i) -> q_<queue>_<i>, with "." and
"-" as "_", so that it is an identifier in the scalingModifiers formula (expr language), where
"cfb-settle-0" would read as a subtraction.
*/}}
{{- define "tgworkers.triggerName" -}}
{{- printf "q_%s_%d" (index . 0 | replace "." "_" | replace "-" "_") (index . 1) -}}
{{- end -}}
