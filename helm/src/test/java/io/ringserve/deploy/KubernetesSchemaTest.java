package io.ringserve.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Rendered manifests against the Kubernetes API schemas: helm/src/test/node/validate.mjs runs the npm package
 * kubernetes-models (and @kubernetes-models/prometheus-operator for ServiceMonitor) under node. Skipped when node or
 * npm is missing; {@code npm ci} installs the locked packages into the git-ignored node_modules on first use.
 */
class KubernetesSchemaTest {
    private static Path nodeDir;

    @BeforeAll
    static void installValidator() {
        assumeTrue(Repo.onPath("node") && Repo.onPath("npm"), "node and npm are needed for the Kubernetes schema check");
        nodeDir = Repo.root().resolve("helm/src/test/node");
        if (!Files.isDirectory(nodeDir.resolve("node_modules/kubernetes-models"))) {
            Repo.Result install = Repo.run(nodeDir, 300, List.of("npm", "ci", "--no-audit", "--no-fund"));
            assumeTrue(install.exitCode() == 0, "npm ci failed (registry unreachable?):\n" + install.output());
        }
    }

    @Test
    void everyValueSetRendersValidObjects() {
        Map<String, Map<String, Object>> valueSets = new LinkedHashMap<>();
        valueSets.put("defaults", Map.of());
        valueSets.put("existing-secret", Map.of("gateway.apiKeys.existingSecret", "team-keys"));
        valueSets.put("host-path", Map.of("model.source", "hostPath", "model.hostPath", "/data/models/Ring-mini-2.0"));
        valueSets.put("copy-from-claim", Map.of("model.source", "copyFromClaim", "model.existingClaim", "models",
                "model.subPath", "Ring-mini-2.0", "worker.kind", "Deployment"));
        valueSets.put("ingress-monitoring", Map.of("ingress.enabled", true, "ingress.className", "nginx",
                "ingress.tls[0].secretName", "llm-tls", "ingress.tls[0].hosts[0]", "ring-serve.local",
                "serviceMonitor.enabled", true, "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name", "monitoring"));
        valueSets.put("no-policy-no-auth", Map.of("networkPolicy.enabled", false, "gateway.apiKeys.create", false));
        valueSets.put("pipeline", Map.of("worker.replicas", 2, "worker.pipeline.stages", 3, "worker.pipeline.numLayers", 20));

        List<String> files = new ArrayList<>();
        Path out = Repo.scratch("rendered");
        for (var set : valueSets.entrySet()) {
            Path file = out.resolve(set.getKey() + ".yaml");
            Charts.writeString(file, Charts.templateText(List.of(), set.getValue()));
            files.add(file.toString());
        }
        Path cpu = out.resolve("cpu.yaml");
        Charts.writeString(cpu, Charts.templateText(List.of(Charts.cpuValues()), Map.of()));
        files.add(cpu.toString());

        List<String> command = new ArrayList<>(List.of("node", "validate.mjs"));
        command.addAll(files);
        Repo.Result result = Repo.run(nodeDir, 120, command);
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).contains("ok StatefulSet/rs-ring-serve-worker", "ok Deployment/rs-ring-serve-gateway",
                "ok StatefulSet/rs-ring-serve-worker-g1", "ok Service/rs-ring-serve-worker-stages",
                "ok ServiceMonitor/", "ok Ingress/", "ok NetworkPolicy/", "ok HorizontalPodAutoscaler/", "ok PodDisruptionBudget/");
    }

    @Test
    void theValidatorRejectsABrokenObject() {
        Path broken = Repo.scratch("rendered").resolve("broken.yaml");
        Charts.writeString(broken, """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: broken
                spec:
                  replicas: two
                  selector:
                    matchLabels: {app: x}
                  template:
                    metadata:
                      labels: {app: x}
                    spec:
                      containers:
                        - name: x
                          image: x
                """);
        Repo.Result result = Repo.run(nodeDir, 60, List.of("node", "validate.mjs", broken.toString()));
        assertThat(result.exitCode()).as(result.output()).isNotZero();
        assertThat(result.output()).contains("invalid Deployment/broken", "/spec/replicas");
    }
}
