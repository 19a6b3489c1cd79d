{{- define "toolhive.name" -}}thv-operator{{- end -}}

{{- define "toolhive.labels" -}}
app.kubernetes.io/name: thv-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "toolhive.selector" -}}
app.kubernetes.io/name: thv-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "toolhive.operatorImage" -}}
{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "toolhive.proxyImage" -}}
{{ .Values.proxyRunner.image.repository }}:{{ .Values.proxyRunner.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Rules the operator needs wherever it manages MCPServers. It must hold every
     permission it grants the proxy's Role (Kubernetes refuses to let it escalate). */}}
{{- define "toolhive.rules" -}}
- apiGroups: [toolhive.stacklok.dev]
  resources: [mcpservers, mcpremoteproxies, mcpregistries, mcptoolconfigs, mcpoidcconfigs, mcpauthzconfigs, mcptelemetryconfigs, mcpgroups, mcpexternalauthconfigs, mcpwebhookconfigs]
  verbs: [get, list, watch]
- apiGroups: [toolhive.stacklok.dev]
  resources: [mcpservers/status, mcpremoteproxies/status, mcpregistries/status, mcptoolconfigs/status, mcpoidcconfigs/status, mcpauthzconfigs/status, mcptelemetryconfigs/status, mcpgroups/status, mcpexternalauthconfigs/status, mcpwebhookconfigs/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion (needed where OwnerReferencesPermissionEnforcement is on).
- apiGroups: [toolhive.stacklok.dev]
  resources: [mcpservers/finalizers, mcpremoteproxies/finalizers, mcpregistries/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services, serviceaccounts, configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [pods/attach]
  verbs: [create, get]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Granted on to the proxies, which read why their server's pod cannot be created.
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
{{- end -}}

{{/* Namespaces the webhook validates: the selector given, else the watched namespace
     (the operator can read nothing else), else every namespace. */}}
{{- define "toolhive.webhookNamespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{ toYaml .Values.webhook.namespaceSelector }}
{{- else if .Values.watchNamespace -}}
matchLabels:
  kubernetes.io/metadata.name: {{ .Values.watchNamespace }}
{{- else -}}
{}
{{- end -}}
{{- end -}}
