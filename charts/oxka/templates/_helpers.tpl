{{/*
Names, labels and the computed Kafka settings shared by the templates.
*/}}

{{- define "oxka.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The StatefulSet's name; pods are <fullname>-0, <fullname>-1, ... */}}
{{- define "oxka.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "oxka.headless" -}}
{{- printf "%s-headless" (include "oxka.fullname" .) }}
{{- end }}

{{- define "oxka.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oxka.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oxka.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oxka.labels" -}}
helm.sh/chart: {{ include "oxka.chart" . }}
{{ include "oxka.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "oxka.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "oxka.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oxka.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* <fullname>-headless.<namespace>.svc.<clusterDomain>: pods are <pod>.<this>. */}}
{{- define "oxka.headlessDomain" -}}
{{- printf "%s.%s.svc.%s" (include "oxka.headless" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* The client Service's host:port, the topics Job's bootstrap server. */}}
{{- define "oxka.bootstrapServer" -}}
{{- printf "%s.%s.svc.%s:%d" (include "oxka.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.listeners.client.port) }}
{{- end }}

{{/*
controller.quorum.voters: one voter per pod, node id = ordinal:
0@oxka-0.oxka-headless.<ns>.svc.cluster.local:9093,1@oxka-1...
*/}}
{{- define "oxka.voters" -}}
{{- $full := include "oxka.fullname" . }}
{{- $domain := include "oxka.headlessDomain" . }}
{{- $port := int .Values.listeners.controller.port }}
{{- $voters := list }}
{{- range $i := until (int .Values.replicaCount) }}
{{- $voters = append $voters (printf "%d@%s-%d.%s:%d" $i $full $i $domain $port) }}
{{- end }}
{{- join "," $voters }}
{{- end }}

{{/*
The replication settings the chart derives from replicaCount, as YAML; a key set in
.Values.config wins. replicaCount 1 / 2 / 3 and more:
  default.replication.factor, offsets.topic.replication.factor,
  transaction.state.log.replication.factor: 1 / 2 / 3 (min(3, replicaCount))
  min.insync.replicas, transaction.state.log.min.isr: 1 / 1 / 2
*/}}
{{- define "oxka.derivedConfig" -}}
{{- $n := int .Values.replicaCount }}
{{- $rf := min 3 $n }}
{{- $isr := ternary 2 1 (ge $n 3) }}
default.replication.factor: {{ $rf }}
min.insync.replicas: {{ $isr }}
offsets.topic.replication.factor: {{ $rf }}
transaction.state.log.min.isr: {{ $isr }}
transaction.state.log.replication.factor: {{ $rf }}
{{- end }}

{{/* Checks the values; fails the render with a clear message instead of a broken cluster. */}}
{{- define "oxka.validate" -}}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- $owned := list "node.id" "broker.id" "listeners" "advertised.listeners" "listener.security.protocol.map" "controller.listener.names" "controller.quorum.voters" "controller.quorum.bootstrap.servers" "inter.broker.listener.name" "process.roles" "log.dirs" "log.dir" "oxka.metrics.listen" }}
{{- range $key, $_ := .Values.config }}
{{- if has $key $owned }}
{{- fail (printf "config.%s is set by the chart (see values.yaml: listeners, persistence, metrics.port); remove it from config" $key) }}
{{- end }}
{{- end }}
{{- range $e := .Values.extraEnv }}
{{- if hasPrefix "KAFKA_" $e.name }}
{{- $key := $e.name | trimPrefix "KAFKA_" | lower | replace "___" "\x01" | replace "__" "\x02" | replace "_" "." | replace "\x01" "-" | replace "\x02" "_" }}
{{- if has $key $owned }}
{{- fail (printf "extraEnv %s sets %s, which the chart sets (see values.yaml: listeners, persistence, metrics.port)" $e.name $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $protocols := list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL" }}
{{- range $l := list .Values.listeners.client .Values.listeners.controller }}
{{- if not (has $l.protocol $protocols) }}
{{- fail (printf "listeners.*.protocol must be one of %s, got %q" (join ", " $protocols) $l.protocol) }}
{{- end }}
{{- if not (regexMatch "^[A-Z][A-Z0-9_]*$" $l.name) }}
{{- fail (printf "listener names are upper-case Kafka listener names, got %q" $l.name) }}
{{- end }}
{{- end }}
{{- if eq .Values.listeners.client.name .Values.listeners.controller.name }}
{{- fail "listeners.client.name and listeners.controller.name must differ" }}
{{- end }}
{{- if eq (int .Values.listeners.client.port) (int .Values.listeners.controller.port) }}
{{- fail "listeners.client.port and listeners.controller.port must differ" }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if ne .Values.listeners.client.protocol "PLAINTEXT" }}
{{- fail (printf "replicaCount=%d needs listeners.client.protocol=PLAINTEXT: the client listener is the inter-broker listener (inter.broker.listener.name) and Oxka's replica fetchers speak PLAINTEXT only (no TLS or SASL between brokers yet), got %q" (int .Values.replicaCount) .Values.listeners.client.protocol) }}
{{- end }}
{{- if ne .Values.listeners.controller.protocol "PLAINTEXT" }}
{{- fail (printf "replicaCount=%d needs listeners.controller.protocol=PLAINTEXT: in a cluster the controller listener carries the Raft metadata quorum, which has no TLS or authentication yet, got %q" (int .Values.replicaCount) .Values.listeners.controller.protocol) }}
{{- end }}
{{- end }}
{{- if and .Values.topics (ne .Values.listeners.client.protocol "PLAINTEXT") }}
{{- fail "the topics Job speaks PLAINTEXT only: with listeners.client.protocol other than PLAINTEXT, leave topics empty" }}
{{- end }}
{{- range $t := .Values.topics }}
{{- if not $t.name }}
{{- fail "every entry of topics needs a name" }}
{{- end }}
{{- end }}
{{- if not (has .Values.podAntiAffinity (list "" "soft" "hard")) }}
{{- fail (printf "podAntiAffinity must be soft, hard or \"\", got %q" .Values.podAntiAffinity) }}
{{- end }}
{{- end }}

{{/* The rendered value of a config entry: booleans and numbers as Kafka spells them. */}}
{{- define "oxka.propertyValue" -}}
{{- $v := . }}
{{- if kindIs "float64" $v }}
{{- if eq $v (floor $v) }}{{ printf "%.0f" $v }}{{ else }}{{ $v }}{{ end }}
{{- else if kindIs "slice" $v }}
{{- join "," $v }}
{{- else }}
{{- toString $v | replace "\\" "\\\\" | replace "\n" "\\n" }}
{{- end }}
{{- end }}
