package io.ringserve.worker.cuda;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The precompiled kernel images: {@code kernels/<name>.fatbin}, one per {@code src/main/cuda/<name>.cu}, and
 * {@code kernels/kernels.list} naming them, on the classpath (the Maven build writes both when it finds nvcc; a
 * build without nvcc has neither) or, when the environment variable {@code RINGSERVE_KERNELS_DIR} (system
 * property {@code ringserve.kernels.dir}) names a directory, there instead — the container image compiles its
 * kernels in a CUDA toolkit stage and ships them beside the jar.
 */
final class Kernels {
    static final String MISSING = "this build has no CUDA kernels (it was built without nvcc; install the CUDA toolkit and rebuild)";
    private static final String LIST = "/kernels/kernels.list";

    private Kernels() {
    }

    /** The kernels directory outside the jar, or null to read the classpath. */
    static java.nio.file.Path directory() {
        String dir = System.getProperty("ringserve.kernels.dir", System.getenv("RINGSERVE_KERNELS_DIR"));
        return dir == null || dir.isBlank() ? null : java.nio.file.Path.of(dir);
    }

    private static InputStream open(String resource) throws IOException {
        java.nio.file.Path dir = directory();
        if (dir == null) {
            return Kernels.class.getResourceAsStream(resource);
        }
        java.nio.file.Path file = dir.resolve(resource.substring("/kernels/".length()));
        return java.nio.file.Files.isRegularFile(file) ? java.nio.file.Files.newInputStream(file) : null;
    }

    /** The kernel files this build has, from kernels.list; empty when it was built without nvcc. */
    static List<String> names() {
        try (InputStream in = open(LIST)) {
            if (in == null) {
                return List.of();
            }
            List<String> names = new ArrayList<>();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    line = line.strip();
                    if (!line.isEmpty() && !line.startsWith("#")) {
                        names.add(line);
                    }
                }
            }
            return List.copyOf(names);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read kernels/kernels.list from " + where(), e);
        }
    }

    /** The build listed kernels and every listed fatbin is on the classpath. */
    static boolean present() {
        List<String> names = names();
        if (names.isEmpty()) {
            return false;
        }
        for (String name : names) {
            try (InputStream in = open(path(name))) {
                if (in == null) {
                    return false;
                }
            } catch (IOException e) {
                return false;
            }
        }
        return true;
    }

    static String path(String name) {
        return "/kernels/" + name + ".fatbin";
    }

    /**
     * The fatbin of one kernel file.
     *
     * @throws IllegalStateException naming the file when this build does not have it
     */
    static byte[] image(String name) {
        try (InputStream in = open(path(name))) {
            if (in == null) {
                List<String> names = names();
                if (names.isEmpty()) {
                    throw new IllegalStateException("kernels/" + name + ".fatbin is not in " + where() + ": " + MISSING);
                }
                throw new IllegalStateException("kernels/" + name + ".fatbin is not in " + where() + "; its kernel files are " + names);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read kernels/" + name + ".fatbin from " + where(), e);
        }
    }

    private static String where() {
        java.nio.file.Path dir = directory();
        return dir == null ? "the classpath" : dir + " (RINGSERVE_KERNELS_DIR)";
    }
}
