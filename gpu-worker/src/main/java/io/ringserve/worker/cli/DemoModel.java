package io.ringserve.worker.cli;

import java.nio.file.Path;

/** Where the demo model lives when no {@code --model} is given: {@code $RING_SERVE_DEMO_MODEL}, else the user cache. */
final class DemoModel {
    private DemoModel() {
    }

    static Path location() {
        String explicit = System.getenv("RING_SERVE_DEMO_MODEL");
        if (explicit != null && !explicit.isBlank()) {
            return Path.of(explicit);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return cache.resolve("ring-serve").resolve("demo-model-v1");
    }
}
