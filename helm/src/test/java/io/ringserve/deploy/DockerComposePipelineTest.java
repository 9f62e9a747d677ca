package io.ringserve.deploy;

import static io.ringserve.deploy.Manifests.at;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.pipeline.yml: two CPU stages holding contiguous layer ranges of one model, the head feeding the last
 * stage, and the gateway seeing only the head. {@code docker-compose config -q} when the binary is installed.
 */
class DockerComposePipelineTest {

    private static Path file() {
        return Repo.root().resolve("docker-compose.pipeline.yml");
    }

    private static Repo.Result compose(String... args) {
        Path keys = Repo.scratch("compose").resolve("api-keys");
        Charts.writeString(keys, "sk-compose-test\n");
        java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of("docker-compose", "--project-directory",
                Repo.root().toString(), "-f", file().toString()));
        command.addAll(java.util.List.of(args));
        return Repo.run(Repo.root(), 60, command, "RING_SERVE_API_KEYS_FILE", keys.toString(), "COMPOSE_PROJECT_NAME", "ringserve-pipeline-test");
    }

    @Test
    void isValid() {
        assumeTrue(Repo.onPath("docker-compose"), "docker-compose is not installed");
        Repo.Result result = compose("config", "-q");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    @SuppressWarnings("unchecked")
    @ParameterizedTest(name = "resolved by docker-compose: {0}")
    @ValueSource(booleans = {true, false})
    void twoCpuStagesChainedAndOnlyTheHeadBehindTheGateway(boolean resolved) {
        assumeTrue(!resolved || Repo.onPath("docker-compose"), "docker-compose is not installed");
        String text = resolved ? compose("config").output() : Repo.read(file());
        Map<String, Object> services = (Map<String, Object>) new Yaml(new LoaderOptions()).<Map<String, Object>>load(text).get("services");
        assertThat(services).containsOnlyKeys("stage-0", "stage-1", "gateway");
        Map<String, Object> head = at(services, "stage-0");
        Map<String, Object> last = at(services, "stage-1");
        String headLayers = String.valueOf((Object) at(head, "environment.RINGSERVE_WORKER_LAYERS"));
        String lastLayers = String.valueOf((Object) at(last, "environment.RINGSERVE_WORKER_LAYERS"));
        if (resolved) {
            assertThat(headLayers).isEqualTo("0-2");
            assertThat(lastLayers).isEqualTo("2-4");
        }
        assertThat(String.valueOf((Object) at(head, "environment.RINGSERVE_WORKER_NEXT_STAGE"))).isEqualTo("stage-1:50051");
        assertThat((Object) at(last, "environment.RINGSERVE_WORKER_NEXT_STAGE")).as("the last stage has no next stage").isNull();
        for (Map<String, Object> stage : java.util.List.of(head, last)) {
            assertThat(String.valueOf((Object) at(stage, "environment.RINGSERVE_WORKER_BACKEND"))).isEqualTo("cpu");
            assertThat((Object) at(stage, "deploy")).as("no GPU").isNull();
            assertThat(stage).doesNotContainKey("ports").containsEntry("read_only", true);
            assertThat(String.valueOf((Object) at(stage, "healthcheck.test"))).contains("/actuator/health/readiness");
            assertThat(stage.get("image")).isEqualTo(head.get("image"));
        }
        Map<String, Object> gateway = at(services, "gateway");
        assertThat(String.valueOf((Object) at(gateway, "environment.RINGSERVE_GATEWAY_WORKERS_DNS_NAME"))).isEqualTo("stage-0");
        assertThat((String) at(gateway, "depends_on.stage-0.condition")).isEqualTo("service_healthy");
        assertThat((Object) at(gateway, "depends_on.stage-1")).isNull();
    }
}
