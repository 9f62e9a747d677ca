package io.ringserve.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Structural lint of gpu-worker/Dockerfile and api-service/Dockerfile (no image can be built here): stages, non-root
 * numeric USER, HEALTHCHECK on Actuator, EXPOSE matching the applications' default ports, JVM flags, no secrets, the
 * model never baked in; plus the entrypoint scripts' model selection, run with a stand-in {@code java}. hadolint runs
 * too when it is on the PATH.
 */
class DockerfileLintTest {
    private static final Pattern NUMERIC_USER = Pattern.compile("(\\d+)(:(\\d+))?");
    private static final Pattern SECRET_NAME = Pattern.compile("(?i).*(password|passwd|secret|token|api_?key|credential|private_?key).*");

    private static Dockerfiles worker() {
        return Dockerfiles.parse(Repo.root().resolve("gpu-worker/Dockerfile"));
    }

    private static Dockerfiles gateway() {
        return Dockerfiles.parse(Repo.root().resolve("api-service/Dockerfile"));
    }

    private static Dockerfiles of(String module) {
        return module.equals("gpu-worker") ? worker() : gateway();
    }

    @Test
    void workerStagesBuildOnJdk25CompileKernelsOnCudaDevelAndRunOnCudaBase() {
        Dockerfiles d = worker();
        assertThat(d.stages()).extracting(Dockerfiles.Stage::name).containsExactly("build", "kernels", "runtime");
        assertThat(d.stage("build").from()).matches("maven:3\\.9.*-eclipse-temurin-25|eclipse-temurin:25-jdk.*");
        assertThat(d.stage("kernels").from()).matches("nvidia/cuda:12\\.\\d+\\.\\d+-devel-ubuntu\\d+\\.\\d+");
        // the kernels are built by the same script as the Maven build, and the runtime reads them from their directory
        assertThat(d.stage("kernels").all("RUN").getFirst().args()).contains("build-kernels.sh", "/out/kernels");
        assertThat(d.last().all("COPY")).anySatisfy(c -> assertThat(c.args()).contains("--from=kernels", "/out/kernels", "/opt/ring-serve/kernels"));
        assertThat(d.last().all("ENV")).anySatisfy(e -> assertThat(e.args()).contains("RINGSERVE_KERNELS_DIR=/opt/ring-serve/kernels"));
        assertThat(d.last().from()).matches("nvidia/cuda:12\\.\\d+\\.\\d+-(base|runtime)-ubuntu\\d+\\.\\d+");
        assertThat(d.last().from()).isEqualTo(d.stage("kernels").from().replace("-devel-", "-base-"));
        // a Java 25 runtime with the Vector API module comes from the build stage (jlink)
        assertThat(d.stage("build").all("RUN")).anySatisfy(r -> assertThat(r.args()).contains("jlink", "jdk.incubator.vector"));
        assertThat(d.last().all("COPY")).anySatisfy(c -> assertThat(c.args()).contains("--from=build", "/out/jre"));
    }

    @Test
    void gatewayRunsOnTemurinJreWithoutCuda() {
        Dockerfiles d = gateway();
        assertThat(d.stages()).extracting(Dockerfiles.Stage::name).containsExactly("build", "runtime");
        assertThat(d.stage("build").from()).matches("maven:3\\.9.*-eclipse-temurin-25|eclipse-temurin:25-jdk.*");
        assertThat(d.last().from()).isEqualTo("eclipse-temurin:25-jre");
        assertThat(d.stages()).noneSatisfy(s -> assertThat(s.from()).contains("cuda"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void everyStageHasAnImageAndCopyFromNamesAStage(String module) {
        Dockerfiles d = of(module);
        Set<String> names = d.stages().stream().map(Dockerfiles.Stage::name).collect(Collectors.toSet());
        for (Dockerfiles.Stage stage : d.stages()) {
            assertThat(stage.from()).as("FROM of %s", stage.name()).matches("[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?").doesNotContain("$");
            assertThat(stage.name()).as("stage name").isNotBlank();
            for (Dockerfiles.Instruction copy : stage.all("COPY")) {
                Matcher from = Pattern.compile("--from=(\\S+)").matcher(copy.args());
                if (from.find()) {
                    assertThat(names).as("COPY --from in %s", stage.name()).contains(from.group(1));
                }
            }
        }
        assertThat(d.stages().stream().filter(s -> !s.all("ADD").isEmpty())).as("COPY instead of ADD").isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void runtimeRunsAsANumericNonRootUser(String module) {
        List<Dockerfiles.Instruction> users = of(module).last().all("USER");
        assertThat(users).isNotEmpty();
        Matcher m = NUMERIC_USER.matcher(users.getLast().args().strip());
        assertThat(m.matches()).as("numeric USER uid[:gid], got %s", users.getLast().args()).isTrue();
        assertThat(Integer.parseInt(m.group(1))).isPositive();
        if (m.group(3) != null) {
            assertThat(Integer.parseInt(m.group(3))).isPositive();
        }
    }

    @Test
    void exposedPortsAreTheApplicationDefaults() {
        String workerYml = Repo.read(Repo.root().resolve("gpu-worker/src/main/resources/application.yml"));
        String workerProps = Repo.read(Repo.root().resolve("gpu-worker/src/main/java/io/ringserve/worker/service/WorkerProperties.java"));
        int workerHttp = Integer.parseInt(find(workerYml, "(?m)^server:\\s*\\n(?:\\s+#.*\\n)*\\s+port:\\s*(\\d+)"));
        int workerGrpc = Integer.parseInt(find(workerProps, "@DefaultValue\\(\"(\\d+)\"\\)\\s*int grpcPort"));
        assertThat(exposed(worker())).containsExactlyInAnyOrder(workerGrpc, workerHttp);

        String gatewayYml = Repo.read(Repo.root().resolve("api-service/src/main/resources/application.yml"));
        int api = Integer.parseInt(find(gatewayYml, "port:\\s*\\$\\{PORT:(\\d+)}"));
        int management = Integer.parseInt(find(gatewayYml, "port:\\s*\\$\\{MANAGEMENT_PORT:(\\d+)}"));
        assertThat(exposed(gateway())).containsExactlyInAnyOrder(api, management);

        assertThat(healthcheck(worker())).contains("/actuator/health/readiness", ":-" + workerHttp + "}");
        assertThat(healthcheck(gateway())).contains("/actuator/health/readiness", ":-" + management + "}");
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void healthcheckHasAProbeInstalled(String module) {
        Dockerfiles.Stage runtime = of(module).last();
        assertThat(runtime.all("HEALTHCHECK")).hasSize(1);
        assertThat(healthcheck(of(module))).contains("--interval=", "--timeout=", "--start-period=", "CMD curl -fsS");
        assertThat(runtime.all("RUN")).anySatisfy(r -> assertThat(r.args()).containsPattern("apt-get install[^&]*\\bcurl\\b"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void jvmIsContainerAwareAndTheRootFilesystemCanBeReadOnly(String module) {
        Dockerfiles.Stage runtime = of(module).last();
        String env = runtime.all("ENV").stream().map(Dockerfiles.Instruction::args).collect(Collectors.joining(" "));
        assertThat(env).contains("-XX:MaxRAMPercentage=", "-Djava.io.tmpdir=/tmp", "RING_SERVE_DEMO_MODEL=/opt/ring-serve/demo-model-v1",
                "RING_SERVE_MODEL_MOUNT=/models/model");
        if (module.equals("gpu-worker")) {
            assertThat(env).contains("--enable-native-access=ALL-UNNAMED", "--add-modules=jdk.incubator.vector",
                    "RINGSERVE_WORKER_BACKEND=auto", "NVIDIA_DRIVER_CAPABILITIES=compute,utility");
        }
        String volumes = runtime.all("VOLUME").stream().map(Dockerfiles.Instruction::args).collect(Collectors.joining(" "));
        assertThat(volumes).contains("\"/tmp\"", "\"/var/cache/ring-serve\"");
        assertThat(runtime.all("ENTRYPOINT")).singleElement().satisfies(e -> assertThat(e.args()).startsWith("[\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void noSecretsAndNoModelBakedIn(String module) {
        Dockerfiles d = of(module);
        String text = Repo.read(Repo.root().resolve(module + "/Dockerfile"));
        assertThat(text).doesNotContainPattern("sk-[A-Za-z0-9]{8,}").doesNotContain("PRIVATE KEY").doesNotContainPattern("(?i)aws_secret");
        for (Dockerfiles.Stage stage : d.stages()) {
            for (String keyword : List.of("ENV", "ARG", "LABEL")) {
                for (Dockerfiles.Instruction i : stage.all(keyword)) {
                    for (String assignment : assignments(i.args())) {
                        String name = assignment.split("=", 2)[0];
                        assertThat(name).as("%s %s in %s", keyword, assignment, stage.name()).doesNotMatch(SECRET_NAME);
                    }
                }
            }
            for (Dockerfiles.Instruction copy : stage.all("COPY")) {
                String[] parts = copy.args().split("\\s+");
                assertThat(parts[parts.length - 1]).as("COPY destination").doesNotStartWith("/models");
                assertThat(copy.args()).doesNotContain("secrets/").doesNotContain("models/");
            }
        }
    }

    @Test
    void dockerignoreKeepsTheContextSmallButTheReactorComplete() {
        List<String> rules = Arrays.stream(Repo.read(Repo.root().resolve(".dockerignore")).split("\n"))
                .map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
        assertThat(rules).contains(".git", "**/target", "**/node_modules", "/models", "/secrets");
        assertThat(rules).noneMatch(r -> r.contains("pom.xml") || r.equals("src") || r.equals("**/src") || r.equals(".mvn"));
    }

    @Test
    void workerEntrypointServesAMountedModelElseTheDemoModel() throws Exception {
        Path script = Repo.root().resolve("gpu-worker/src/main/docker/entrypoint.sh");
        runEntrypoint(script, "RINGSERVE_WORKER_MODEL", "serve");
    }

    @Test
    void gatewayEntrypointReadsAMountedModelElseTheDemoTokenizer() throws Exception {
        Path script = Repo.root().resolve("api-service/src/main/docker/entrypoint.sh");
        runEntrypoint(script, "RINGSERVE_GATEWAY_MODEL_DIR", null);
    }

    /** Runs an entrypoint with a stand-in java that prints the model variable and its arguments. */
    private static void runEntrypoint(Path script, String variable, String arg) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "needs /bin/sh");
        assertThat(Files.isExecutable(script)).as("%s is executable", script).isTrue();
        Path dir = Repo.scratch("entrypoint-" + variable);
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Path java = bin.resolve("java");
        Files.writeString(java, "#!/bin/sh\necho \"model=${" + variable + ":-unset}\"\necho \"args=$*\"\n");
        java.toFile().setExecutable(true);
        Path mounted = Files.createDirectories(dir.resolve("mounted"));
        Files.writeString(mounted.resolve("config.json"), "{}");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        String path = bin + ":" + System.getenv("PATH");
        List<String> command = new ArrayList<>(List.of("/bin/sh", script.toString()));
        if (arg != null) {
            command.add(arg);
        }
        Repo.Result withModel = Repo.run(dir, 30, command, "PATH", path, "RING_SERVE_MODEL_MOUNT", mounted.toString(),
                "RING_SERVE_DEMO_MODEL", "/opt/demo", "RING_SERVE_JVM_FLAGS", "--enable-native-access=ALL-UNNAMED", "JAVA_OPTS", "-Xmx1g");
        assertThat(withModel.exitCode()).as(withModel.output()).isZero();
        assertThat(withModel.output()).contains("model=" + mounted, "--enable-native-access=ALL-UNNAMED -Xmx1g -jar /opt/ring-serve/");
        if (arg != null) {
            assertThat(withModel.output()).contains(".jar " + arg);
        }
        Repo.Result withoutModel = Repo.run(dir, 30, command, "PATH", path, "RING_SERVE_MODEL_MOUNT", empty.toString(),
                "RING_SERVE_DEMO_MODEL", "/opt/demo", "RING_SERVE_JVM_FLAGS", "", "JAVA_OPTS", "");
        assertThat(withoutModel.exitCode()).as(withoutModel.output()).isZero();
        String expected = variable.equals("RINGSERVE_WORKER_MODEL") ? "model=unset" : "model=/opt/demo";
        assertThat(withoutModel.output()).contains(expected);
        Repo.Result explicit = Repo.run(dir, 30, command, "PATH", path, "RING_SERVE_MODEL_MOUNT", mounted.toString(),
                "RING_SERVE_DEMO_MODEL", "/opt/demo", "RING_SERVE_JVM_FLAGS", "", "JAVA_OPTS", "", variable, "/elsewhere");
        assertThat(explicit.output()).contains("model=/elsewhere");
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu-worker", "api-service"})
    void hadolintWhenAvailable(String module) {
        assumeTrue(Repo.onPath("hadolint"), "hadolint is not installed");
        Repo.Result result = Repo.run(Repo.root(), 60, List.of("hadolint", "--failure-threshold", "error", module + "/Dockerfile"));
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    private static List<Integer> exposed(Dockerfiles d) {
        return d.last().all("EXPOSE").stream().flatMap(e -> Arrays.stream(e.args().split("\\s+")))
                .map(p -> Integer.parseInt(p.replaceAll("/(tcp|udp)$", ""))).toList();
    }

    private static String healthcheck(Dockerfiles d) {
        return d.last().all("HEALTHCHECK").getFirst().args();
    }

    private static String find(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertThat(m.find()).as("pattern %s", regex).isTrue();
        return m.group(1);
    }

    /** NAME=value pairs of an ENV/ARG/LABEL line (values may be quoted and hold spaces). */
    private static List<String> assignments(String args) {
        List<String> result = new ArrayList<>();
        Matcher m = Pattern.compile("([A-Za-z_][A-Za-z0-9_.\\-]*)(=(\"[^\"]*\"|\\S*))?").matcher(args);
        while (m.find()) {
            result.add(m.group(1) + (m.group(2) != null ? m.group(2) : ""));
            if (m.group(2) == null) {
                break; // legacy "ENV NAME value" form: the rest is the value
            }
        }
        return result;
    }
}
