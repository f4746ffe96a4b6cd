{{- define "tgworkers.labels" -}}
app.kubernetes.io/name: tgworkers
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
