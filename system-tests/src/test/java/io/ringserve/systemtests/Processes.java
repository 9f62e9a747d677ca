package io.ringserve.systemtests;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * Launches the packaged worker and gateway (and the worker command line) as real child processes on the
 * JDK running the tests, on loopback ports chosen here, with output in log files. Every process started is
 * destroyed by {@link #close()} and, should the test JVM exit first, by a shutdown hook.
 */
final class Processes implements AutoCloseable {
    /** JVM flags the worker needs: the Vector API and native access. */
    static final List<String> WORKER_JVM_FLAGS = List.of("--enable-native-access=ALL-UNNAMED",
            "--add-modules=jdk.incubator.vector", "-Dstdout.encoding=UTF-8", "-Dstderr.encoding=UTF-8");

    private final Path logDir;
    private final List<Process> started = new CopyOnWriteArrayList<>();
    private final Thread hook = new Thread(this::destroyAll, "system-test-process-cleanup");

    Processes(Path logDir) {
        this.logDir = logDir;
        try {
            Files.createDirectories(logDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Runtime.getRuntime().addShutdownHook(hook);
    }

    Path logDir() {
        return logDir;
    }

    /** The java binary of the JVM running the tests (a JDK 25, chosen by the build's toolchain). */
    static String javaBinary() {
        return ProcessHandle.current().info().command().orElseThrow(() ->
                new IllegalStateException("cannot tell which java binary runs the tests"));
    }

    /** A path given to the tests as a system property by the build, which must name an existing file. */
    static Path requiredFile(String property, String hint) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            throw new IllegalStateException("system property " + property + " is not set; run the tests through Maven");
        }
        Path p = Path.of(value).toAbsolutePath().normalize();
        if (!Files.exists(p)) {
            throw new IllegalStateException(p + " does not exist (" + property + "); " + hint);
        }
        return p;
    }

    /** A loopback port nothing listens on right now. */
    static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Starts {@code java <jvmFlags> -jar <jar> <args>} with stdout and stderr in {@code <name>.log}. */
    Process startJar(String name, List<String> jvmFlags, Path jar, List<String> args) {
        List<String> command = new ArrayList<>();
        command.add(javaBinary());
        command.addAll(jvmFlags);
        command.add("-jar");
        command.add(jar.toString());
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(log(name).toFile());
        try {
            Process p = pb.start();
            started.add(p);
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + command, e);
        }
    }

    /**
     * Runs a command-line tool to completion and returns its stdout (UTF-8); stderr goes to
     * {@code <name>.log}. Fails when it exits non-zero or runs longer than the timeout.
     */
    String run(String name, List<String> jvmFlags, Path jar, List<String> args, Duration timeout) {
        List<String> command = new ArrayList<>();
        command.add(javaBinary());
        command.addAll(jvmFlags);
        command.add("-jar");
        command.add(jar.toString());
        command.addAll(args);
        Path out = logDir.resolve(name + ".out");
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(log(name).toFile());
        try {
            Process p = pb.start();
            started.add(p);
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                stop(p);
                throw new IllegalStateException(name + " did not finish within " + timeout + "; see " + log(name));
            }
            started.remove(p);
            if (p.exitValue() != 0) {
                throw new IllegalStateException(name + " exited with " + p.exitValue() + ": " + tail(log(name)));
            }
            return Files.readString(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + name + ": " + command, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + name, e);
        }
    }

    /**
     * Polls {@code url} until it answers 200 with {@code "status":"UP"}; fails with the end of the log when
     * the process exits first or the timeout passes.
     */
    static void awaitUp(String name, Process process, URI url, Duration timeout, Path log) {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(name + " exited with " + process.exitValue()
                        + " before it was ready:\n" + tail(log));
            }
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(2)).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200 && r.body().contains("\"status\":\"UP\"")) {
                    return;
                }
                last = r.statusCode() + " " + r.body();
            } catch (IOException e) {
                last = e.toString();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + name, e);
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + name, e);
            }
        }
        throw new IllegalStateException(name + " was not ready within " + timeout + " (" + url + ": " + last + "):\n" + tail(log));
    }

    Path log(String name) {
        return logDir.resolve(name + ".log");
    }

    /** The last lines of a log, for failure messages. */
    static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(no log at " + log + ")";
        }
    }

    /** SIGTERM, a bounded wait for a clean exit, then SIGKILL. */
    static void stop(Process p) {
        if (!p.isAlive()) {
            return;
        }
        p.destroy();
        try {
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private void destroyAll() {
        // SIGTERM to all first, so they shut down in parallel
        started.forEach(p -> {
            if (p.isAlive()) {
                p.destroy();
            }
        });
        started.forEach(Processes::stop);
    }

    @Override
    public void close() {
        destroyAll();
        started.clear();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is already shutting down; the hook runs anyway
        }
    }
}
