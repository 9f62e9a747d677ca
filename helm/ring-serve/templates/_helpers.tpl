{{/* Chart name, 63 characters at most. */}}
{{- define "ring-serve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified prefix of resource names; short enough for "-worker-headless" to fit 63 characters. */}}
{{- define "ring-serve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ring-serve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ring-serve.gateway.fullname" -}}{{ include "ring-serve.fullname" . }}-gateway{{- end }}
{{- define "ring-serve.worker.fullname" -}}{{ include "ring-serve.fullname" . }}-worker{{- end }}
{{- define "ring-serve.worker.headless" -}}{{ include "ring-serve.fullname" . }}-worker-headless{{- end }}
{{- define "ring-serve.worker.stages" -}}{{ include "ring-serve.fullname" . }}-worker-stages{{- end }}

{{/* Pipeline mode: worker.pipeline.stages > 1 cuts the model into layer ranges, one worker pod (stage) each. */}}
{{- define "ring-serve.worker.pipeline" -}}
{{- if gt (int .Values.worker.pipeline.stages) 1 }}true{{ end }}
{{- end }}

{{/* The layer range of each stage, space-separated ("0-10 10-20"): worker.pipeline.layers, or numLayers split
     evenly, rounding up from the front (the last stage, which also runs the lm_head, gets the fewest). */}}
{{- define "ring-serve.worker.pipelineLayers" -}}
{{- $p := .Values.worker.pipeline }}
{{- $stages := int $p.stages }}
{{- if $p.layers }}
{{- if ne (len $p.layers) $stages }}
{{- fail (printf "worker.pipeline.layers has %d ranges for %d stages (one per stage)" (len $p.layers) $stages) }}
{{- end }}
{{- join " " $p.layers }}
{{- else if gt (int $p.numLayers) 0 }}
{{- $layers := int $p.numLayers }}
{{- if lt $layers $stages }}
{{- fail (printf "worker.pipeline.numLayers (%d) is smaller than worker.pipeline.stages (%d)" $layers $stages) }}
{{- end }}
{{- $ranges := list }}
{{- range $i := until $stages }}
{{- $start := div (add (mul $i $layers) (sub $stages 1)) $stages }}
{{- $end := div (add (mul (add $i 1) $layers) (sub $stages 1)) $stages }}
{{- $ranges = append $ranges (printf "%d-%d" $start $end) }}
{{- end }}
{{- join " " $ranges }}
{{- else }}
{{- fail "worker.pipeline.stages > 1 needs worker.pipeline.numLayers (the model's num_hidden_layers) or worker.pipeline.layers" }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ring-serve.labels" -}}
helm.sh/chart: {{ include "ring-serve.chart" . }}
app.kubernetes.io/name: {{ include "ring-serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ring-serve
{{- end }}

{{/* Selector labels of one component: include "ring-serve.selectorLabels" (list . "gateway") */}}
{{- define "ring-serve.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "ring-serve.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component: include "ring-serve.componentLabels" (list . "worker") */}}
{{- define "ring-serve.componentLabels" -}}
{{ include "ring-serve.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "ring-serve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ring-serve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: include "ring-serve.image" (list . .Values.worker.image) */}}
{{- define "ring-serve.image" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* Name of the Secret holding the API keys; empty when authentication is off. */}}
{{- define "ring-serve.apiKeysSecretName" -}}
{{- if .Values.gateway.apiKeys.existingSecret }}
{{- .Values.gateway.apiKeys.existingSecret }}
{{- else if .Values.gateway.apiKeys.create }}
{{- include "ring-serve.fullname" . }}-api-keys
{{- end }}
{{- end }}

{{/* Model directory inside the containers: the mounted checkpoint, or the demo model shipped in the images. */}}
{{- define "ring-serve.modelDir" -}}
{{- if eq .Values.model.source "demo" }}/opt/ring-serve/demo-model-v1{{ else }}/models/model{{ end }}
{{- end }}

{{/* Worker grace period: explicit, or preStop sleep + drain timeout + 15 s for the servers to stop. */}}
{{- define "ring-serve.worker.terminationGracePeriodSeconds" -}}
{{- if gt (int .Values.worker.terminationGracePeriodSeconds) 0 }}
{{- .Values.worker.terminationGracePeriodSeconds }}
{{- else }}
{{- add .Values.worker.preStopSleepSeconds .Values.worker.drainTimeoutSeconds 15 }}
{{- end }}
{{- end }}

{{/* Volume the checkpoint is read from (existingClaim, hostPath) or copied from (copyFromClaim). */}}
{{- define "ring-serve.modelSourceVolume" -}}
{{- if eq .Values.model.source "hostPath" -}}
- name: model
  hostPath:
    path: {{ .Values.model.hostPath }}
    type: Directory
{{- else if eq .Values.model.source "existingClaim" -}}
- name: model
  persistentVolumeClaim:
    claimName: {{ .Values.model.existingClaim }}
    readOnly: true
{{- else if eq .Values.model.source "copyFromClaim" -}}
- name: model-source
  persistentVolumeClaim:
    claimName: {{ .Values.model.existingClaim }}
    readOnly: true
- name: model
  emptyDir:
    sizeLimit: {{ .Values.model.copy.sizeLimit }}
    {{- with .Values.model.copy.medium }}
    medium: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Mount of the checkpoint at /models/model (nothing for the demo model). */}}
{{- define "ring-serve.modelMount" -}}
{{- if ne .Values.model.source "demo" -}}
- name: model
  mountPath: /models/model
  readOnly: true
  {{- if and .Values.model.subPath (ne .Values.model.source "copyFromClaim") }}
  subPath: {{ .Values.model.subPath }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Init container copying the checkpoint (or, with files, only those files) from the claim:
     include "ring-serve.modelCopyInit" (list . files image) */}}
{{- define "ring-serve.modelCopyInit" -}}
{{- $root := index . 0 }}
{{- $files := index . 1 }}
{{- $image := index . 2 }}
{{- if eq $root.Values.model.source "copyFromClaim" -}}
- name: copy-model
  image: {{ include "ring-serve.image" (list $root $image) }}
  imagePullPolicy: {{ $image.pullPolicy }}
  command: ["/bin/sh", "-c"]
  args:
    - |
      set -eu
      src="/model-source/{{ $root.Values.model.subPath }}"
      {{- if $files }}
      for f in {{ join " " $files }}; do cp "$src/$f" /models/model/; done
      {{- else }}
      cp -R "$src/." /models/model/
      {{- end }}
      ls -l /models/model
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    requests:
      cpu: 100m
      memory: 64Mi
    limits:
      memory: 256Mi
  volumeMounts:
    - name: model-source
      mountPath: /model-source
      readOnly: true
    - name: model
      mountPath: /models/model
{{- end }}
{{- end }}
