{{/*
The labels every object carries (what the kustomize overlays add with `labels:`): the platform,
the inventory label prune and the sensors select on, and the environment. The project, not Helm,
manages these objects (no `helm install`), so managed-by names the project.
*/}}
{{- define "llm-cost-ops.commonLabels" -}}
app.kubernetes.io/part-of: {{ .Values.partOf }}
app.kubernetes.io/managed-by: {{ .Values.managedBy }}
llm-cost-ops-ops/environment: {{ required "environment is required (values-<env>.yaml)" .Values.environment }}
{{- end }}

{{/* Labels of a top-level object: its own, the common ones, and the chart that rendered it. */}}
{{- define "llm-cost-ops.labels" -}}
{{ include "llm-cost-ops.commonLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
The namespace of every object: the environment's, and the release must be rendered into it
(`--namespace`), so the bundle never lands in `default` by accident.
*/}}
{{- define "llm-cost-ops.namespace" -}}
{{- $namespace := required "namespace is required (values-<env>.yaml)" .Values.namespace -}}
{{- if ne $namespace .Release.Namespace -}}
{{- fail (printf "namespace %q (values) differs from the release namespace %q: render with --namespace %s" $namespace .Release.Namespace $namespace) -}}
{{- end -}}
{{- $namespace -}}
{{- end }}

{{/* The API image: repository and a tag (a pinned one outside dev; the policy check holds it). */}}
{{- define "llm-cost-ops.apiImage" -}}
{{ .Values.image.repository }}:{{ required "image.tag is required (values-<env>.yaml)" .Values.image.tag }}
{{- end }}
