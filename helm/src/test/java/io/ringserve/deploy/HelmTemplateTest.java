package io.ringserve.deploy;

import static io.ringserve.deploy.Manifests.at;
import static io.ringserve.deploy.Manifests.container;
import static io.ringserve.deploy.Manifests.containerPort;
import static io.ringserve.deploy.Manifests.env;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code helm template} with several value sets; assertions on the rendered objects. */
class HelmTemplateTest {
    private static final String GATEWAY = "rs-ring-serve-gateway";
    private static final String WORKER = "rs-ring-serve-worker";
    private static final String HEADLESS = "rs-ring-serve-worker-headless";

    @Test
    void defaultsRenderGatewayAndGpuWorkers() {
        Manifests m = Charts.template(Map.of());
        assertThat(m.names()).contains("Deployment/" + GATEWAY, "Service/" + GATEWAY, "HorizontalPodAutoscaler/" + GATEWAY,
                "PodDisruptionBudget/" + GATEWAY, "ConfigMap/" + GATEWAY, "Secret/rs-ring-serve-api-keys",
                "StatefulSet/" + WORKER, "Service/" + HEADLESS, "ConfigMap/" + WORKER, "PodDisruptionBudget/" + WORKER,
                "NetworkPolicy/" + WORKER, "ServiceAccount/rs-ring-serve");
        assertThat(m.ofKind("Ingress")).isEmpty();
        assertThat(m.ofKind("ServiceMonitor")).isEmpty();

        Map<String, Object> worker = m.get("StatefulSet", WORKER);
        Map<String, Object> c = container(worker, "worker");
        Map<String, Object> limits = at(c, "resources.limits");
        Map<String, Object> requests = at(c, "resources.requests");
        assertThat(limits).containsEntry("nvidia.com/gpu", 1);
        assertThat(requests).containsEntry("nvidia.com/gpu", 1);
        assertThat(limits).containsKey("memory");
        List<Map<String, Object>> tolerations = at(worker, "spec.template.spec.tolerations");
        assertThat(tolerations).anySatisfy(t -> assertThat(t).containsEntry("key", "nvidia.com/gpu"));
        assertThat((String) at(worker, "spec.serviceName")).isEqualTo(HEADLESS);
        assertThat((Object) at(worker, "spec.replicas")).isEqualTo(1);

        Map<String, Object> workerConfig = Manifests.applicationYml(m.get("ConfigMap", WORKER));
        assertThat((String) at(workerConfig, "ringserve.worker.backend")).isEqualTo("auto");
        assertThat((Object) at(workerConfig, "ringserve.worker.model")).as("demo model: no model property").isNull();
        assertThat((String) at(workerConfig, "ringserve.worker.drain-timeout")).isEqualTo("30s");
        assertThat((Object) at(workerConfig, "server.port")).isEqualTo(8081);
        assertThat((Object) at(workerConfig, "ringserve.worker.grpc-port")).isEqualTo(50051);
    }

    @Test
    void cpuValuesRequestNoGpu() {
        Manifests m = Charts.template(List.of(Charts.cpuValues()), Map.of());
        Map<String, Object> c = container(m.get("StatefulSet", WORKER), "worker");
        Map<String, Object> limits = at(c, "resources.limits");
        Map<String, Object> requests = at(c, "resources.requests");
        assertThat(limits).doesNotContainKey("nvidia.com/gpu");
        assertThat(requests).doesNotContainKey("nvidia.com/gpu");
        assertThat((Object) at(m.get("StatefulSet", WORKER), "spec.template.spec.tolerations")).isNull();
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", WORKER)), "ringserve.worker.backend")).isEqualTo("cpu");
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", GATEWAY)), "ringserve.gateway.model-dir"))
                .isEqualTo("/opt/ring-serve/demo-model-v1");
        assertThat(m.ofKind("HorizontalPodAutoscaler")).isEmpty();
        assertThat((Object) at(m.get("Deployment", GATEWAY), "spec.replicas")).isEqualTo(1);
    }

    @Test
    void probesUseTheActuatorGroupsOnTheManagementPorts() {
        Manifests m = Charts.template(Map.of());
        Map<String, Object> w = container(m.get("StatefulSet", WORKER), "worker");
        assertThat(containerPort(w, "grpc")).isEqualTo(50051);
        assertThat(containerPort(w, "http")).isEqualTo(8081);
        assertThat((String) at(w, "startupProbe.httpGet.path")).isEqualTo("/actuator/health/readiness");
        assertThat((String) at(w, "readinessProbe.httpGet.path")).isEqualTo("/actuator/health/readiness");
        assertThat((String) at(w, "livenessProbe.httpGet.path")).isEqualTo("/actuator/health/liveness");
        for (String probe : List.of("startupProbe", "readinessProbe", "livenessProbe")) {
            assertThat((Object) at(w, probe + ".httpGet.port")).isEqualTo("http");
        }
        int period = at(w, "startupProbe.periodSeconds");
        int failures = at(w, "startupProbe.failureThreshold");
        assertThat(period * failures).as("startup allowance for weight loading, seconds").isGreaterThanOrEqualTo(20 * 60);

        Map<String, Object> g = container(m.get("Deployment", GATEWAY), "gateway");
        assertThat(containerPort(g, "http")).isEqualTo(8080);
        assertThat(containerPort(g, "management")).isEqualTo(8091);
        assertThat((String) at(g, "readinessProbe.httpGet.path")).isEqualTo("/actuator/health/readiness");
        assertThat((String) at(g, "livenessProbe.httpGet.path")).isEqualTo("/actuator/health/liveness");
        assertThat((String) at(g, "startupProbe.httpGet.path")).isEqualTo("/actuator/health/liveness");
        for (String probe : List.of("startupProbe", "readinessProbe", "livenessProbe")) {
            assertThat((Object) at(g, probe + ".httpGet.port")).isEqualTo("management");
        }
        Map<String, Object> gatewayConfig = Manifests.applicationYml(m.get("ConfigMap", GATEWAY));
        assertThat((Object) at(gatewayConfig, "server.port")).isEqualTo(8080);
        assertThat((Object) at(gatewayConfig, "management.server.port")).isEqualTo(8091);
    }

    @Test
    void servicesTargetNamedContainerPortsAndSelectThePods() {
        Manifests m = Charts.template(Map.of());
        assertServiceMatches(m.get("Service", GATEWAY), m.get("Deployment", GATEWAY), "gateway");
        Map<String, Object> headless = m.get("Service", HEADLESS);
        assertThat((String) at(headless, "spec.clusterIP")).isEqualTo("None");
        assertServiceMatches(headless, m.get("StatefulSet", WORKER), "worker");
        Map<String, Object> grpc = ((List<Map<String, Object>>) at(headless, "spec.ports")).stream()
                .filter(p -> "grpc".equals(p.get("name"))).findFirst().orElseThrow();
        assertThat(grpc).containsEntry("port", 50051);

        // the gateway resolves the headless Service
        Map<String, Object> gatewayConfig = Manifests.applicationYml(m.get("ConfigMap", GATEWAY));
        assertThat((String) at(gatewayConfig, "ringserve.gateway.workers.dns-name"))
                .isEqualTo(HEADLESS + "." + Charts.NAMESPACE + ".svc.cluster.local");
        assertThat((Object) at(gatewayConfig, "ringserve.gateway.workers.dns-port")).isEqualTo(50051);
    }

    private static void assertServiceMatches(Map<String, Object> service, Map<String, Object> workload, String containerName) {
        Map<String, Object> selector = at(service, "spec.selector");
        Map<String, Object> podLabels = at(workload, "spec.template.metadata.labels");
        Map<String, Object> workloadSelector = at(workload, "spec.selector.matchLabels");
        assertThat(selector).isNotEmpty().isEqualTo(workloadSelector);
        assertThat(podLabels).containsAllEntriesOf(selector);
        Map<String, Object> c = container(workload, containerName);
        List<Map<String, Object>> ports = at(service, "spec.ports");
        for (Map<String, Object> port : ports) {
            Object target = port.get("targetPort");
            assertThat(target).as("targetPort of %s", port.get("name")).isInstanceOf(String.class);
            containerPort(c, (String) target); // throws when the container has no such named port
        }
    }

    @Test
    void generatedSecretIsWiredIntoTheGateway() {
        Manifests m = Charts.template(Map.of());
        Map<String, Object> secret = m.get("Secret", "rs-ring-serve-api-keys");
        String encoded = at(secret, "data.api-keys");
        String keys = new String(java.util.Base64.getDecoder().decode(encoded));
        assertThat(keys).matches("sk-[A-Za-z0-9]{40}\\n");
        assertApiKeysWiring(m, "rs-ring-serve-api-keys", "api-keys");
    }

    @Test
    void existingSecretIsUsedAndNoneIsCreated() {
        Manifests m = Charts.template(Map.of("gateway.apiKeys.existingSecret", "team-keys", "gateway.apiKeys.secretKey", "keys.txt"));
        assertThat(m.ofKind("Secret")).isEmpty();
        assertApiKeysWiring(m, "team-keys", "keys.txt");
    }

    @Test
    void explicitKeysAndAuthenticationOff() {
        Manifests explicit = Charts.template(Map.of("gateway.apiKeys.keys[0]", "sk-one", "gateway.apiKeys.keys[1]", "sk-two"));
        String encoded = at(explicit.get("Secret", "rs-ring-serve-api-keys"), "data.api-keys");
        assertThat(new String(java.util.Base64.getDecoder().decode(encoded))).isEqualTo("sk-one\nsk-two\n");

        Manifests off = Charts.template(Map.of("gateway.apiKeys.create", false));
        assertThat(off.ofKind("Secret")).isEmpty();
        assertThat((Object) at(Manifests.applicationYml(off.get("ConfigMap", GATEWAY)), "ringserve.gateway.api-keys-file")).isNull();
        List<Map<String, Object>> volumes = at(off.get("Deployment", GATEWAY), "spec.template.spec.volumes");
        assertThat(volumes).noneSatisfy(v -> assertThat(v).containsKey("secret"));
    }

    private static void assertApiKeysWiring(Manifests m, String secretName, String key) {
        Map<String, Object> deployment = m.get("Deployment", GATEWAY);
        List<Map<String, Object>> volumes = at(deployment, "spec.template.spec.volumes");
        Map<String, Object> volume = volumes.stream().filter(v -> "api-keys".equals(v.get("name"))).findFirst().orElseThrow();
        assertThat((String) at(volume, "secret.secretName")).isEqualTo(secretName);
        assertThat((String) at(volume, "secret.items.0.key")).isEqualTo(key);
        List<Map<String, Object>> mounts = at(container(deployment, "gateway"), "volumeMounts");
        Map<String, Object> mount = mounts.stream().filter(v -> "api-keys".equals(v.get("name"))).findFirst().orElseThrow();
        String file = mount.get("mountPath") + "/" + at(volume, "secret.items.0.path");
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", GATEWAY)), "ringserve.gateway.api-keys-file")).isEqualTo(file);
    }

    @Test
    void ringLiteValuesServeTheV1CheckpointFromAClaim() {
        Manifests m = Charts.template(List.of(Repo.chart().resolve("values-ring-lite.yaml")), Map.of());
        Map<String, Object> worker = Manifests.applicationYml(m.get("ConfigMap", WORKER));
        Map<String, Object> gateway = Manifests.applicationYml(m.get("ConfigMap", GATEWAY));
        assertThat((String) at(worker, "ringserve.worker.model-id")).isEqualTo("inclusionAI/Ring-lite");
        assertThat((String) at(gateway, "ringserve.gateway.model-id")).isEqualTo("inclusionAI/Ring-lite");
        assertThat((String) at(worker, "ringserve.worker.model")).isEqualTo("/models/model");
        assertThat((String) at(worker, "ringserve.worker.kv-cache-bytes")).isEqualTo("16GB");
        List<Map<String, Object>> volumes = at(m.get("StatefulSet", WORKER), "spec.template.spec.volumes");
        assertThat(volumes).anySatisfy(v -> assertThat((String) at(v, "persistentVolumeClaim.claimName")).isEqualTo("ring-lite-weights"));
        Map<String, Object> limits = at(container(m.get("StatefulSet", WORKER), "worker"), "resources.limits");
        assertThat(limits).containsEntry("nvidia.com/gpu", 1).containsEntry("memory", "24Gi");
    }

    @Test
    void hostPathModelIsMountedReadOnlyInWorkersAndGateway() {
        Manifests m = Charts.template(Map.of("model.source", "hostPath", "model.hostPath", "/data/models/Ring-mini-2.0"));
        for (Map<String, Object> workload : List.of(m.get("StatefulSet", WORKER), m.get("Deployment", GATEWAY))) {
            List<Map<String, Object>> volumes = at(workload, "spec.template.spec.volumes");
            Map<String, Object> model = volumes.stream().filter(v -> "model".equals(v.get("name"))).findFirst().orElseThrow();
            assertThat((String) at(model, "hostPath.path")).isEqualTo("/data/models/Ring-mini-2.0");
            Map<String, Object> c = (Map<String, Object>) ((List<?>) at(workload, "spec.template.spec.containers")).getFirst();
            List<Map<String, Object>> mounts = at(c, "volumeMounts");
            assertThat(mounts).anySatisfy(mount -> assertThat(mount)
                    .containsEntry("name", "model").containsEntry("mountPath", "/models/model").containsEntry("readOnly", true));
        }
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", WORKER)), "ringserve.worker.model")).isEqualTo("/models/model");
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", GATEWAY)), "ringserve.gateway.model-dir")).isEqualTo("/models/model");
    }

    @Test
    void existingClaimAndCopyFromClaim() {
        Manifests claim = Charts.template(Map.of("model.source", "existingClaim", "model.existingClaim", "models", "model.subPath", "Ring-mini-2.0"));
        List<Map<String, Object>> volumes = at(claim.get("StatefulSet", WORKER), "spec.template.spec.volumes");
        assertThat(volumes).anySatisfy(v -> assertThat((String) at(v, "persistentVolumeClaim.claimName")).isEqualTo("models"));
        List<Map<String, Object>> mounts = at(container(claim.get("StatefulSet", WORKER), "worker"), "volumeMounts");
        assertThat(mounts).anySatisfy(mount -> assertThat(mount).containsEntry("subPath", "Ring-mini-2.0"));

        Manifests copy = Charts.template(Map.of("model.source", "copyFromClaim", "model.existingClaim", "models"));
        List<Map<String, Object>> init = at(copy.get("StatefulSet", WORKER), "spec.template.spec.initContainers");
        assertThat(init).singleElement().satisfies(c -> assertThat(c).containsEntry("name", "copy-model"));
        List<Map<String, Object>> gatewayInit = at(copy.get("Deployment", GATEWAY), "spec.template.spec.initContainers");
        assertThat((String) at(gatewayInit.getFirst(), "args.0")).contains("tokenizer.json").doesNotContain("safetensors");
        List<Map<String, Object>> copyVolumes = at(copy.get("StatefulSet", WORKER), "spec.template.spec.volumes");
        assertThat(copyVolumes).anySatisfy(v -> assertThat(v).containsEntry("name", "model").containsKey("emptyDir"));
    }

    @Test
    void ingressAndServiceMonitorsWhenEnabled() {
        Manifests m = Charts.template(Map.of("ingress.enabled", true, "ingress.className", "nginx",
                "ingress.hosts[0].host", "llm.example.com", "ingress.hosts[0].paths[0].path", "/",
                "ingress.hosts[0].paths[0].pathType", "Prefix", "serviceMonitor.enabled", true));
        Map<String, Object> ingress = m.get("Ingress", GATEWAY);
        assertThat((String) at(ingress, "spec.rules.0.host")).isEqualTo("llm.example.com");
        assertThat((String) at(ingress, "spec.rules.0.http.paths.0.backend.service.name")).isEqualTo(GATEWAY);
        assertThat((String) at(ingress, "spec.rules.0.http.paths.0.backend.service.port.name")).isEqualTo("http");

        List<Map<String, Object>> monitors = m.ofKind("ServiceMonitor");
        assertThat(monitors).hasSize(2);
        for (Map<String, Object> monitor : monitors) {
            assertThat((String) at(monitor, "spec.endpoints.0.path")).isEqualTo("/actuator/prometheus");
            Map<String, Object> selector = at(monitor, "spec.selector.matchLabels");
            String component = (String) selector.get("app.kubernetes.io/component");
            Map<String, Object> service = m.get("Service", "gateway".equals(component) ? GATEWAY : HEADLESS);
            Map<String, Object> serviceLabels = at(service, "metadata.labels");
            assertThat(serviceLabels).containsAllEntriesOf(selector);
            String port = at(monitor, "spec.endpoints.0.port");
            assertThat((List<Map<String, Object>>) at(service, "spec.ports")).anySatisfy(p -> assertThat(p).containsEntry("name", port));
        }
    }

    @Test
    void networkPolicyLetsOnlyTheGatewayReachTheWorkersGrpcPort() {
        Manifests m = Charts.template(Map.of("networkPolicy.enabled", true));
        Map<String, Object> policy = m.get("NetworkPolicy", WORKER);
        Map<String, Object> podSelector = at(policy, "spec.podSelector.matchLabels");
        assertThat(podSelector).isEqualTo(at(m.get("StatefulSet", WORKER), "spec.selector.matchLabels"));
        List<Map<String, Object>> rules = at(policy, "spec.ingress");
        List<Map<String, Object>> grpcRules = rules.stream()
                .filter(r -> ((List<Map<String, Object>>) r.get("ports")).stream().anyMatch(p -> "grpc".equals(p.get("port")))).toList();
        assertThat(grpcRules).singleElement().satisfies(rule -> {
            Map<String, Object> from = at(rule, "from.0.podSelector.matchLabels");
            assertThat(from).isEqualTo(at(m.get("Deployment", GATEWAY), "spec.selector.matchLabels"));
            assertThat((List<?>) rule.get("from")).hasSize(1);
        });
        assertThat(Charts.template(Map.of("networkPolicy.enabled", false)).ofKind("NetworkPolicy")).isEmpty();
    }

    @Test
    void pdbAndHpaTargetTheGateway() {
        Manifests m = Charts.template(Map.of());
        Map<String, Object> hpa = m.get("HorizontalPodAutoscaler", GATEWAY);
        assertThat((String) at(hpa, "spec.scaleTargetRef.kind")).isEqualTo("Deployment");
        assertThat((String) at(hpa, "spec.scaleTargetRef.name")).isEqualTo(GATEWAY);
        assertThat((Object) at(m.get("Deployment", GATEWAY), "spec.replicas")).as("the HPA owns replicas").isNull();
        Map<String, Object> pdb = m.get("PodDisruptionBudget", GATEWAY);
        assertThat((Object) at(pdb, "spec.selector.matchLabels")).isEqualTo(at(m.get("Deployment", GATEWAY), "spec.selector.matchLabels"));
        Map<String, Object> workerPdb = m.get("PodDisruptionBudget", WORKER);
        assertThat((Object) at(workerPdb, "spec.selector.matchLabels")).isEqualTo(at(m.get("StatefulSet", WORKER), "spec.selector.matchLabels"));
    }

    @Test
    void drainFitsTheGracePeriodAndPodsAreHardened() {
        Manifests m = Charts.template(Map.of("worker.drainTimeoutSeconds", 120));
        Map<String, Object> worker = m.get("StatefulSet", WORKER);
        int grace = at(worker, "spec.template.spec.terminationGracePeriodSeconds");
        Map<String, Object> c = container(worker, "worker");
        List<String> preStop = at(c, "lifecycle.preStop.exec.command");
        assertThat(preStop.getFirst()).isEqualTo("sleep");
        int sleep = Integer.parseInt(preStop.get(1));
        assertThat(grace).isGreaterThan(sleep + 120);
        assertThat((String) at(Manifests.applicationYml(m.get("ConfigMap", WORKER)), "ringserve.worker.drain-timeout")).isEqualTo("120s");

        for (Map<String, Object> workload : List.of(worker, m.get("Deployment", GATEWAY))) {
            Map<String, Object> pod = at(workload, "spec.template.spec.securityContext");
            assertThat(pod).containsEntry("runAsNonRoot", true).containsEntry("runAsUser", 10001);
            Map<String, Object> container = (Map<String, Object>) ((List<?>) at(workload, "spec.template.spec.containers")).getFirst();
            assertThat((Object) at(container, "securityContext.readOnlyRootFilesystem")).isEqualTo(true);
            assertThat((Object) at(container, "securityContext.allowPrivilegeEscalation")).isEqualTo(false);
            assertThat((List<String>) at(container, "securityContext.capabilities.drop")).containsExactly("ALL");
            List<Map<String, Object>> mounts = at(container, "volumeMounts");
            assertThat(mounts).anySatisfy(mount -> assertThat(mount).containsEntry("mountPath", "/tmp"));
            assertThat(env(container, "JAVA_OPTS")).contains("-XX:MaxRAMPercentage");
        }
        assertThat((List<Map<String, Object>>) at(c, "volumeMounts"))
                .anySatisfy(mount -> assertThat(mount).containsEntry("mountPath", "/var/cache/ring-serve"));
        int gatewayGrace = at(m.get("Deployment", GATEWAY), "spec.template.spec.terminationGracePeriodSeconds");
        assertThat(gatewayGrace).isGreaterThanOrEqualTo(30 + 5);
    }

    @Test
    void workerAsDeploymentWithSchedulingValues() {
        Manifests m = Charts.template(Map.of("worker.kind", "Deployment", "worker.replicas", 3,
                "worker.nodeSelector.gpu-type", "h100", "worker.runtimeClassName", "nvidia", "worker.gpu.count", 2));
        assertThat(m.ofKind("StatefulSet")).isEmpty();
        Map<String, Object> worker = m.get("Deployment", WORKER);
        assertThat((Object) at(worker, "spec.replicas")).isEqualTo(3);
        assertThat((String) at(worker, "spec.template.spec.nodeSelector.gpu-type")).isEqualTo("h100");
        assertThat((String) at(worker, "spec.template.spec.runtimeClassName")).isEqualTo("nvidia");
        Map<String, Object> limits = at(container(worker, "worker"), "resources.limits");
        assertThat(limits).containsEntry("nvidia.com/gpu", 2);
        assertThat((Object) at(worker, "spec.strategy.rollingUpdate.maxSurge")).isEqualTo(0);
    }

    @Test
    void extraConfigIsMergedIntoTheApplicationYmlAndRollsThePods() {
        Manifests base = Charts.template(Map.of());
        Manifests m = Charts.template(Map.of("gateway.config.ringserve.gateway.limits.per-key-concurrency", 4,
                "worker.config.ringserve.worker.max-running", 8));
        Map<String, Object> gateway = Manifests.applicationYml(m.get("ConfigMap", GATEWAY));
        assertThat((Object) at(gateway, "ringserve.gateway.limits.per-key-concurrency")).isEqualTo(4);
        assertThat((Object) at(gateway, "ringserve.gateway.limits.default-max-tokens")).as("kept").isEqualTo(8192);
        assertThat((Object) at(Manifests.applicationYml(m.get("ConfigMap", WORKER)), "ringserve.worker.max-running")).isEqualTo(8);
        String annotation = "spec.template.metadata.annotations.checksum/config";
        assertThat((String) at(m.get("Deployment", GATEWAY), annotation))
                .isNotEqualTo(at(base.get("Deployment", GATEWAY), annotation));
        for (Map<String, Object> workload : List.of(m.get("Deployment", GATEWAY), m.get("StatefulSet", WORKER))) {
            Map<String, Object> c = (Map<String, Object>) ((List<?>) at(workload, "spec.template.spec.containers")).getFirst();
            assertThat(env(c, "SPRING_CONFIG_ADDITIONAL_LOCATION")).isEqualTo("optional:file:/etc/ring-serve/config/");
            assertThat((List<Map<String, Object>>) at(c, "volumeMounts"))
                    .anySatisfy(mount -> assertThat(mount).containsEntry("name", "config").containsEntry("mountPath", "/etc/ring-serve/config"));
        }
    }
}
