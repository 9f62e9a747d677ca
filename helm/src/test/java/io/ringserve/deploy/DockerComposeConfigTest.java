package io.ringserve.deploy;

import static io.ringserve.deploy.Manifests.at;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.yml: {@code docker-compose config -q} (docker-compose 1.29, installed by .ci/run) for the default and
 * the {@code cpu} profile, skipped when the binary is absent; structural checks on the resolved file (or, without the
 * binary, on the file as written).
 */
class DockerComposeConfigTest {

    private static boolean haveCompose() {
        return Repo.onPath("docker-compose");
    }

    private static Repo.Result compose(Path file, String... args) {
        Path keys = Repo.scratch("compose").resolve("api-keys");
        Charts.writeString(keys, "sk-compose-test\n");
        List<String> command = new ArrayList<>(List.of("docker-compose", "--project-directory", Repo.root().toString(),
                "-f", file.toString()));
        command.addAll(List.of(args));
        return Repo.run(Repo.root(), 60, command, "RING_SERVE_API_KEYS_FILE", keys.toString(),
                "COMPOSE_PROJECT_NAME", "ringserve-test");
    }

    private static Path composeFile() {
        return Repo.root().resolve("docker-compose.yml");
    }

    @Test
    void aRingLiteCheckpointIsServedBySettingItsDirectoryAndModelId() {
        assumeTrue(haveCompose(), "docker-compose is not installed");
        Path keys = Repo.scratch("compose").resolve("api-keys");
        Charts.writeString(keys, "sk-compose-test\n");
        Repo.Result result = Repo.run(Repo.root(), 60, List.of("docker-compose", "--project-directory", Repo.root().toString(), "-f",
                        composeFile().toString(), "config"), "RING_SERVE_API_KEYS_FILE", keys.toString(), "COMPOSE_PROJECT_NAME", "ringserve-test",
                "RING_SERVE_MODEL_DIR", "/data/models/Ring-lite", "RING_SERVE_MODEL_ID", "inclusionAI/Ring-lite");
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).contains("RINGSERVE_WORKER_MODEL_ID: inclusionAI/Ring-lite", "RINGSERVE_GATEWAY_MODEL_ID: inclusionAI/Ring-lite",
                "/data/models/Ring-lite");
        assertThat(result.output()).doesNotContain("Ring-mini-2.0");
    }

    @Test
    void defaultProfileIsValid() {
        assumeTrue(haveCompose(), "docker-compose is not installed");
        Repo.Result result = compose(composeFile(), "config", "-q");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    @Test
    void cpuProfileIsValid() {
        assumeTrue(haveCompose(), "docker-compose is not installed");
        Repo.Result result = compose(composeFile(), "--profile", "cpu", "config", "-q");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    @Test
    void configRejectsAnInvalidFile() {
        assumeTrue(haveCompose(), "docker-compose is not installed");
        Path broken = Repo.scratch("compose").resolve("broken-compose.yml");
        Charts.writeString(broken, """
                services:
                  worker:
                    image: x
                    deploy:
                      resources:
                        reservations:
                          devices: not-a-list
                """);
        assertThat(compose(broken, "config", "-q").exitCode()).isNotZero();
    }

    /** Services of the resolved configuration ({@code docker-compose --profile cpu config}) or of the file as written. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> services(boolean resolved) {
        String text;
        if (resolved) {
            Repo.Result result = compose(composeFile(), "--profile", "cpu", "config");
            assertThat(result.exitCode()).as(result.output()).isZero();
            text = result.output();
        } else {
            text = Repo.read(composeFile());
        }
        Map<String, Object> config = new Yaml(new LoaderOptions()).load(text);
        return (Map<String, Object>) config.get("services");
    }

    @Test
    void fileUsesTheComposeSpecificationWithoutVersion() {
        Map<String, Object> raw = new Yaml(new LoaderOptions()).load(Repo.read(composeFile()));
        assertThat(raw).doesNotContainKey("version").containsKeys("services", "secrets");
    }

    @ParameterizedTest(name = "resolved by docker-compose: {0}")
    @ValueSource(booleans = {true, false})
    void gpuWorkerGatewayAndCpuProfileAreWired(boolean resolved) {
        assumeTrue(!resolved || haveCompose(), "docker-compose is not installed");
        Map<String, Object> services = services(resolved);
        assertThat(services).containsKeys("gateway", "worker", "worker-cpu", "gateway-cpu");

        Map<String, Object> worker = at(services, "worker");
        Map<String, Object> device = at(worker, "deploy.resources.reservations.devices.0");
        assertThat(device).containsEntry("driver", "nvidia").containsEntry("count", 1);
        assertThat((List<String>) device.get("capabilities")).containsExactly("gpu");
        assertThat(worker).doesNotContainKey("ports").doesNotContainKey("profiles");
        assertThat(String.valueOf(worker.get("volumes"))).contains("/models/model:ro");
        assertThat(String.valueOf((Object) at(worker, "healthcheck.test"))).contains("/actuator/health/readiness", "8081");
        assertThat(worker).containsEntry("read_only", true);

        Map<String, Object> gateway = at(services, "gateway");
        assertThat((String) at(gateway, "depends_on.worker.condition")).isEqualTo("service_healthy");
        assertThat(String.valueOf((Object) at(gateway, "environment.RINGSERVE_GATEWAY_WORKERS_DNS_NAME"))).isEqualTo("worker");
        assertThat(String.valueOf((Object) at(gateway, "environment.RINGSERVE_GATEWAY_WORKERS_DNS_PORT"))).isEqualTo("50051");
        assertThat(String.valueOf((Object) at(gateway, "environment.RINGSERVE_GATEWAY_API_KEYS_FILE"))).isEqualTo("/run/secrets/api_keys");
        assertThat(String.valueOf(gateway.get("secrets"))).contains("api_keys");
        assertThat(targetPorts(gateway)).containsExactlyInAnyOrder(8080, 8091);
        assertThat(String.valueOf((Object) at(gateway, "healthcheck.test"))).contains("/actuator/health/readiness", "8091");

        Map<String, Object> workerCpu = at(services, "worker-cpu");
        assertThat(workerCpu.get("image")).isEqualTo(worker.get("image"));
        assertThat(String.valueOf((Object) at(workerCpu, "environment.RINGSERVE_WORKER_BACKEND"))).isEqualTo("cpu");
        assertThat((Object) at(workerCpu, "deploy")).isNull();
        assertThat(workerCpu).doesNotContainKey("volumes");
        assertThat((List<String>) workerCpu.get("profiles")).containsExactly("cpu");
        Map<String, Object> gatewayCpu = at(services, "gateway-cpu");
        assertThat((String) at(gatewayCpu, "depends_on.worker-cpu.condition")).isEqualTo("service_healthy");
        assertThat(String.valueOf((Object) at(gatewayCpu, "environment.RINGSERVE_GATEWAY_WORKERS_DNS_NAME"))).isEqualTo("worker-cpu");
        assertThat((List<String>) gatewayCpu.get("profiles")).containsExactly("cpu");
    }

    /** Container ports of a service's {@code ports} entries, in the short ("h:c", "ip:h:c/tcp") or long form. */
    private static List<Integer> targetPorts(Map<String, Object> service) {
        List<Integer> ports = new ArrayList<>();
        for (Object port : (List<?>) service.get("ports")) {
            if (port instanceof Map<?, ?> map) {
                ports.add(Integer.valueOf(String.valueOf(map.get("target"))));
            } else {
                String text = String.valueOf(port).replaceAll("/(tcp|udp)$", "");
                ports.add(Integer.valueOf(text.substring(text.lastIndexOf(':') + 1)));
            }
        }
        return ports;
    }
}
