package io.ringserve.deploy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Paths of the repository and the module's output folder, and a small process runner for the tests. */
final class Repo {
    private Repo() {
    }

    /** The repository root (the parent of this module). */
    static Path root() {
        String configured = System.getProperty("ringserve.repo.root");
        Path root = configured != null ? Path.of(configured) : Path.of("..");
        return root.toAbsolutePath().normalize();
    }

    /** The chart directory. */
    static Path chart() {
        return root().resolve("helm").resolve("ring-serve");
    }

    /** A scratch folder inside this module's build output (target, or -Dringserve.build.dir=...). */
    static Path scratch(String name) {
        String buildDir = System.getProperty("ringserve.build.dir");
        Path base = buildDir != null ? Path.of(buildDir) : root().resolve("helm").resolve("target");
        Path dir = base.toAbsolutePath().resolve("deploy-tests").resolve(name);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** True when {@code command} is an executable on the PATH. */
    static boolean onPath(String command) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String dir : path.split(java.io.File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, command))) {
                return true;
            }
        }
        return false;
    }

    /** Result of a finished process: exit code and stdout + stderr together. */
    record Result(int exitCode, String output) {
    }

    /** Runs a command in {@code dir} with extra environment variables (pairs), at most {@code timeoutSeconds}. */
    static Result run(Path dir, long timeoutSeconds, List<String> command, String... env) {
        ProcessBuilder builder = new ProcessBuilder(new ArrayList<>(command)).directory(dir.toFile()).redirectErrorStream(true);
        for (int i = 0; i + 1 < env.length; i += 2) {
            builder.environment().put(env[i], env[i + 1]);
        }
        try {
            Process process = builder.start();
            process.getOutputStream().close();
            byte[] out;
            try (var in = process.getInputStream()) {
                out = in.readAllBytes();
            }
            if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command) + " ran longer than " + timeoutSeconds + " s");
            }
            return new Result(process.exitValue(), new String(out, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
