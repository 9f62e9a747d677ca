package io.ringserve.deploy;

import static io.ringserve.deploy.Manifests.at;
import static io.ringserve.deploy.Manifests.container;
import static io.ringserve.deploy.Manifests.env;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code worker.pipeline}: pipeline groups of stage pods. Each group is a StatefulSet whose pod ordinal i holds the
 * i-th layer range and streams to ordinal i+1 under the stages Service; only the heads (ordinal 0) are behind the
 * gateway's worker Service.
 */
class HelmPipelineTest {
    private static final String HEADLESS = "rs-ring-serve-worker-headless";
    private static final String STAGES = "rs-ring-serve-worker-stages";
    private static final String GROUP0 = "rs-ring-serve-worker-g0";

    static Manifests pipeline(Map<String, Object> extra) {
        Map<String, Object> sets = new java.util.LinkedHashMap<>(Map.of("worker.pipeline.stages", 3, "worker.pipeline.numLayers", 20));
        sets.putAll(extra);
        return Charts.template(sets);
    }

    @Test
    void eachGroupIsAStatefulSetOfStagesAndOnlyHeadsFaceTheGateway() {
        Manifests m = pipeline(Map.of("worker.replicas", 2));
        assertThat(m.ofKind("StatefulSet")).extracting(s -> (String) at(s, "metadata.name"))
                .containsExactly(GROUP0, "rs-ring-serve-worker-g1");
        for (Map<String, Object> group : m.ofKind("StatefulSet")) {
            String name = at(group, "metadata.name");
            assertThat((Object) at(group, "spec.replicas")).as("one pod per stage").isEqualTo(3);
            assertThat((String) at(group, "spec.serviceName")).isEqualTo(STAGES);
            assertThat((String) at(group, "spec.podManagementPolicy")).isEqualTo("Parallel");
            Map<String, Object> selector = at(group, "spec.selector.matchLabels");
            assertThat(selector).containsEntry("ring-serve.io/pipeline-group", name).containsEntry("app.kubernetes.io/component", "worker");
            assertThat((Map<String, Object>) at(group, "spec.template.metadata.labels")).containsAllEntriesOf(selector);
            Map<String, Object> c = container(group, "worker");
            assertThat(env(c, "RING_SERVE_PIPELINE_LAYERS")).isEqualTo("0-7 7-14 14-20");
            assertThat(env(c, "RING_SERVE_PIPELINE_NEXT")).isEqualTo(name + "-%d." + STAGES + "." + Charts.NAMESPACE + ".svc.cluster.local:50051");
            assertThat((Map<String, Object>) at(c, "resources.limits")).containsEntry("nvidia.com/gpu", 1);
        }

        Map<String, Object> headless = m.get("Service", HEADLESS);
        assertThat((Map<String, Object>) at(headless, "spec.selector")).containsEntry("apps.kubernetes.io/pod-index", "0")
                .containsEntry("app.kubernetes.io/component", "worker");
        assertThat((List<Map<String, Object>>) at(headless, "spec.ports")).extracting(p -> p.get("name")).containsExactly("grpc");
        Map<String, Object> stages = m.get("Service", STAGES);
        assertThat((String) at(stages, "spec.clusterIP")).isEqualTo("None");
        assertThat((Object) at(stages, "spec.publishNotReadyAddresses")).isEqualTo(true);
        assertThat((Map<String, Object>) at(stages, "spec.selector")).doesNotContainKey("apps.kubernetes.io/pod-index");
        assertThat((List<Map<String, Object>>) at(stages, "spec.ports")).extracting(p -> p.get("name")).containsExactly("grpc", "http");

        Map<String, Object> config = Manifests.applicationYml(m.get("ConfigMap", "rs-ring-serve-worker"));
        assertThat((String) at(config, "ringserve.worker.stage-timeout")).isEqualTo("30s");
        assertThat((Object) at(config, "ringserve.worker.micro-batches")).isEqualTo(0);
        assertThat((Object) at(config, "ringserve.worker.stage-dtype")).isEqualTo("auto");
        assertThat((Object) at(config, "ringserve.worker.steps-in-flight")).isEqualTo(1);
        assertThat((Object) at(config, "ringserve.worker.layers")).as("set per pod from its ordinal").isNull();

        Map<String, Object> policy = m.get("NetworkPolicy", "rs-ring-serve-worker");
        List<Map<String, Object>> grpcFrom = at(policy, "spec.ingress.0.from");
        assertThat(grpcFrom).extracting(f -> ((Map<String, Object>) at(f, "podSelector.matchLabels")).get("app.kubernetes.io/component"))
                .containsExactly("gateway", "worker");
    }

    @Test
    void thePodCommandGivesEachOrdinalItsRangeAndTheNextStagesName() {
        assumeTrue(Repo.onPath("sh"), "a POSIX shell is needed to run the pod command");
        Map<String, Object> c = container(pipeline(Map.of()).get("StatefulSet", GROUP0), "worker");
        assertThat((List<String>) c.get("command")).containsExactly("/bin/sh", "-c");
        String script = ((List<String>) c.get("args")).getFirst();
        assertThat(script).contains("exec /opt/ring-serve/bin/entrypoint.sh serve");
        String probe = script.replace("exec /opt/ring-serve/bin/entrypoint.sh serve", "echo \"$RINGSERVE_WORKER_LAYERS ${RINGSERVE_WORKER_NEXT_STAGE:-none}\"");
        String[] expected = {
            "0-7 " + GROUP0 + "-1." + STAGES + ".llm.svc.cluster.local:50051",
            "7-14 " + GROUP0 + "-2." + STAGES + ".llm.svc.cluster.local:50051",
            "14-20 none"};
        for (int i = 0; i < 3; i++) {
            Repo.Result r = Repo.run(Repo.root(), 10, List.of("sh", "-c", probe), "HOSTNAME", GROUP0 + "-" + i,
                    "RING_SERVE_PIPELINE_LAYERS", env(c, "RING_SERVE_PIPELINE_LAYERS"), "RING_SERVE_PIPELINE_NEXT", env(c, "RING_SERVE_PIPELINE_NEXT"));
            assertThat(r.exitCode()).as(r.output()).isZero();
            assertThat(r.output().strip()).isEqualTo(expected[i]);
        }
        Repo.Result extra = Repo.run(Repo.root(), 10, List.of("sh", "-c", probe), "HOSTNAME", GROUP0 + "-3",
                "RING_SERVE_PIPELINE_LAYERS", env(c, "RING_SERVE_PIPELINE_LAYERS"), "RING_SERVE_PIPELINE_NEXT", env(c, "RING_SERVE_PIPELINE_NEXT"));
        assertThat(extra.exitCode()).isNotZero();
        assertThat(extra.output()).contains("pod ordinal 3 has no layer range");
    }

    @Test
    void explicitRangesAndSettings() {
        Manifests m = Charts.template(Map.of("worker.pipeline.stages", 2, "worker.pipeline.layers[0]", "0-12", "worker.pipeline.layers[1]", "12-20",
                "worker.pipeline.stageTimeoutSeconds", 10, "worker.pipeline.microBatches", 1,
                "worker.pipeline.stageDtype", "float32", "worker.pipeline.stepsInFlight", 2));
        assertThat(env(container(m.get("StatefulSet", GROUP0), "worker"), "RING_SERVE_PIPELINE_LAYERS")).isEqualTo("0-12 12-20");
        Map<String, Object> config = Manifests.applicationYml(m.get("ConfigMap", "rs-ring-serve-worker"));
        assertThat((String) at(config, "ringserve.worker.stage-timeout")).isEqualTo("10s");
        assertThat((Object) at(config, "ringserve.worker.micro-batches")).isEqualTo(1);
        assertThat((Object) at(config, "ringserve.worker.stage-dtype")).isEqualTo("float32");
        assertThat((Object) at(config, "ringserve.worker.steps-in-flight")).isEqualTo(2);
    }

    @Test
    void withoutAPipelineNothingChanges() {
        Manifests m = Charts.template(Map.of());
        assertThat(m.find("Service", STAGES)).isEmpty();
        assertThat(m.find("StatefulSet", "rs-ring-serve-worker")).isPresent();
        assertThat((Map<String, Object>) at(m.get("Service", HEADLESS), "spec.selector")).doesNotContainKey("apps.kubernetes.io/pod-index");
        assertThat(env(container(m.get("StatefulSet", "rs-ring-serve-worker"), "worker"), "RING_SERVE_PIPELINE_LAYERS")).isNull();
    }

    @Test
    void impossiblePipelinesAreRefusedWithTheReason() {
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 2)))
                .hasMessageContaining("worker.pipeline.numLayers");
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 3, "worker.pipeline.layers[0]", "0-10",
                "worker.pipeline.layers[1]", "10-20"))).hasMessageContaining("has 2 ranges for 3 stages");
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 2, "worker.pipeline.numLayers", 20,
                "worker.kind", "Deployment"))).hasMessageContaining("needs worker.kind StatefulSet");
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 4, "worker.pipeline.numLayers", 3)))
                .hasMessageContaining("smaller than worker.pipeline.stages");
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 2, "worker.pipeline.layers[0]", "first",
                "worker.pipeline.layers[1]", "10-20"))).hasMessageContaining("values don't meet the specifications of the schema");
        assertThatThrownBy(() -> Charts.templateText(List.of(), Map.of("worker.pipeline.stages", 0)))
                .hasMessageContaining("values don't meet the specifications of the schema");
    }

    @Test
    void lintAcceptsAPipelineOverlay() {
        java.nio.file.Path overlay = Repo.scratch("pipeline").resolve("pipeline.yaml");
        Charts.writeString(overlay, """
                worker:
                  replicas: 2
                  pipeline:
                    stages: 2
                    numLayers: 20
                """);
        var result = Charts.lintStrict(overlay, "pipeline");
        assertThat(result.isFailed()).as(String.join("\n", result.getMessages())).isFalse();
    }
}
