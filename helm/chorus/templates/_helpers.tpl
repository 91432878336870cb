{{/*
Names and labels.
*/}}
{{- define "chorus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chorus.fullname" -}}
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

{{/* Name of a component's objects: (dict "root" $ "name" "identity") */}}
{{- define "chorus.componentName" -}}
{{- printf "%s-%s" (include "chorus.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chorus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* (dict "root" $ "component" "identity") */}}
{{- define "chorus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chorus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "chorus.labels" -}}
helm.sh/chart: {{ include "chorus.chart" .root }}
{{ include "chorus.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: chorus
{{- end }}

{{- define "chorus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chorus.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "chorus.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Settings.

Values are rendered as figment reads CHORUS_* variables: numbers, booleans and [arrays] are
parsed, so a string that looks like a number (LinkedIn-Version 202601, a numeric client id) is
sent in double quotes to stay a string.
*/}}
{{- define "chorus.figmentString" -}}
{{- printf "\"%s\"" (. | toString | replace "\\" "\\\\" | replace "\"" "\\\"") }}
{{- end }}

{{/* URL a network's adapter calls: netsim when it is enabled, else the configured one. */}}
{{- define "chorus.networkUrl" -}}
{{- if .root.Values.netsim.enabled }}
{{- printf "http://%s:%d" (include "chorus.componentName" (dict "root" .root "name" "netsim")) (.root.Values.netsim.service.port | int) }}
{{- else }}
{{- .url }}
{{- end }}
{{- end }}

{{/* Networks of the publishing service that are on, in order. */}}
{{- define "chorus.enabledNetworks" -}}
{{- range $network, $settings := .Values.publishing.networks }}
{{- if $settings.enabled }}
{{ $network }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Secret environment of every Chorus container: the security values (shared by every service:
the gateway verifies tokens, publishing encrypts social tokens) and, when it is a secret, the
NATS URL (with nats.perServiceUsers, each service's own key `<existingSecretKey>-<target>`,
whose URL carries that service's user of deploy/nats/services.conf). Never plain values:
(dict "root" $ "target" "content").
*/}}
{{- define "chorus.secretEnv" -}}
{{- $secret := .root.Values.secrets.existingSecret }}
- name: CHORUS_SECURITY__DEV_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .root.Values.secrets.keys.devSigningKey }}
- name: CHORUS_SECURITY__ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .root.Values.secrets.keys.encryptionKeys }}
- name: CHORUS_SECURITY__VISITOR_SALT
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .root.Values.secrets.keys.visitorSalt }}
{{- if .root.Values.nats.existingSecret }}
- name: CHORUS_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.nats.existingSecret }}
      {{- if .root.Values.nats.perServiceUsers }}
      key: {{ printf "%s-%s" .root.Values.nats.existingSecretKey .target }}
      {{- else }}
      key: {{ .root.Values.nats.existingSecretKey }}
      {{- end }}
{{- end }}
{{- end }}

{{/* Database URL of one service, when it owns a database: (dict "root" $ "service" "identity") */}}
{{- define "chorus.databaseEnv" -}}
{{- $key := get .root.Values.secrets.keys.databaseUrls .service }}
{{- if $key }}
- name: CHORUS_{{ upper .service }}__DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.existingSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}

{{/* Client secrets of the enabled networks, for processes running the publishing target. */}}
{{- define "chorus.networkSecretEnv" -}}
{{- range $network, $settings := .Values.publishing.networks }}
{{- if and $settings.enabled $settings.clientSecretKey }}
- name: CHORUS_PUBLISHING__{{ upper $network }}__CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.secrets.existingSecret }}
      key: {{ $settings.clientSecretKey }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Deployment of one component. Every component is the same image with another target.
  root:   the chart's context
  name:   object name suffix and component label (identity, publisher-linkedin)
  target: `chorus run --target` value
  values: the component's values block
  ports:  extra container ports besides admin (list of dict name/port)
  env:    extra EnvVar objects set by the chart (list)
*/}}
{{- define "chorus.deployment" -}}
{{- $root := .root }}
{{- $values := .values }}
{{- $autoscaling := $values.autoscaling | default dict }}
{{- $kind := .kind | default "Deployment" }}
apiVersion: apps/v1
kind: {{ $kind }}
metadata:
  name: {{ include "chorus.componentName" . }}
  labels:
    {{- include "chorus.labels" (dict "root" $root "component" .name) | nindent 4 }}
spec:
  {{- if not $autoscaling.enabled }}
  replicas: {{ $values.replicaCount }}
  {{- end }}
  {{- if eq $kind "StatefulSet" }}
  serviceName: {{ include "chorus.componentName" . }}
  # Replicas own disjoint partitions and need no ordered start.
  podManagementPolicy: Parallel
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "chorus.selectorLabels" (dict "root" $root "component" .name) | nindent 6 }}
  template:
    metadata:
      annotations:
        # Settings come from the ConfigMap through envFrom, which a running pod never re-reads:
        # a change of settings rolls the pods.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "chorus.labels" (dict "root" $root "component" .name) | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "chorus.serviceAccountName" $root }}
      # Chorus calls no Kubernetes API.
      automountServiceAccountToken: false
      # Kubernetes would otherwise add <SERVICE>_PORT-style variables for every Service of the
      # namespace, CHORUS_* ones included, to the environment that Chorus reads its settings from.
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # `chorus run` gives its services 20 s to drain after SIGTERM.
      terminationGracePeriodSeconds: 30
      containers:
        - name: chorus
          image: {{ include "chorus.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["run", "--target", {{ .target | quote }}]
          ports:
            - name: admin
              containerPort: 9600
              protocol: TCP
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "chorus.componentName" (dict "root" $root "name" "config") }}
          env:
            {{- include "chorus.secretEnv" (dict "root" $root "target" .target) | trim | nindent 12 }}
            {{- with include "chorus.databaseEnv" (dict "root" $root "service" .target) | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- if eq .target "publishing" }}
            {{- with include "chorus.networkSecretEnv" $root | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- end }}
            {{- if and (eq .target "notifications") $root.Values.notifications.smtpUrlKey }}
            - name: CHORUS_NOTIFICATIONS__SMTP_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.secrets.existingSecret }}
                  key: {{ $root.Values.notifications.smtpUrlKey }}
            {{- end }}
            {{- if and (eq .target "notifications") $root.Values.notifications.emailFrom }}
            - name: CHORUS_NOTIFICATIONS__EMAIL_FROM
              value: {{ $root.Values.notifications.emailFrom | quote }}
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            {{- toYaml $values.livenessProbe | nindent 12 }}
          readinessProbe:
            {{- toYaml $values.readinessProbe | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
The Service of one component: the admin port (scraped by the ServiceMonitor) and any API port.
  root, name, ports (list of dict name/port/targetPort), type, annotations
*/}}
{{- define "chorus.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "chorus.componentName" . }}
  labels:
    {{- include "chorus.labels" (dict "root" .root "component" .name) | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "chorus.selectorLabels" (dict "root" .root "component" .name) | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .targetPort }}
      protocol: TCP
    {{- end }}
    - name: admin
      port: 9600
      targetPort: admin
      protocol: TCP
{{- end }}

{{/* HorizontalPodAutoscaler of one component: root, name, values */}}
{{- define "chorus.hpa" -}}
{{- $autoscaling := .values.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "chorus.componentName" . }}
  labels:
    {{- include "chorus.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "chorus.componentName" . }}
  minReplicas: {{ $autoscaling.minReplicas }}
  maxReplicas: {{ $autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage }}
{{- end }}

{{/* PodDisruptionBudget of one component: root, name, values */}}
{{- define "chorus.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "chorus.componentName" . }}
  labels:
    {{- include "chorus.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  minAvailable: {{ .values.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "chorus.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
{{- end }}
