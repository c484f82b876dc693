{{- define "fastapi-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fastapi-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fastapi-operator.labels" -}}
{{ include "fastapi-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fastapi-operator.serviceAccountName" -}}
{{- default (include "fastapi-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Rights on the objects the operator makes for each app, in every namespace it watches.
Server-side apply is a PATCH, and a PATCH that creates the object also needs create. */}}
{{- define "fastapi-operator.namespacedRules" -}}
- apiGroups: [fastapi-operator.dev]
  resources: [fastapiapps]
  verbs: [get, list, watch]
- apiGroups: [fastapi-operator.dev]
  resources: [fastapiapps/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Migration Jobs: created once under a name that says what they run, never updated.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [traefik.io]
  resources: [middlewares]
  verbs: [get, list, watch, create, patch, delete]
# Certificates: read for apps behind an Ingress (cert-manager's ingress-shim makes those), made for
# apps that bring their own Gateway listeners.
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, listenersets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
