package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Kernels shipped beside the jar (the container image's layout) instead of inside it. */
class KernelsDirectoryTest {
    @TempDir
    Path dir;

    @AfterEach
    void clear() {
        System.clearProperty("ringserve.kernels.dir");
    }

    @Test
    void aKernelsDirectoryReplacesTheClasspath() throws Exception {
        Files.writeString(dir.resolve("kernels.list"), "# kernels\nrmsnorm\nembedding\n");
        Files.write(dir.resolve("rmsnorm.fatbin"), new byte[] {1, 2, 3});
        System.setProperty("ringserve.kernels.dir", dir.toString());

        assertEquals(List.of("rmsnorm", "embedding"), Kernels.names());
        assertFalse(Kernels.present(), "embedding.fatbin is missing");
        assertArrayEquals(new byte[] {1, 2, 3}, Kernels.image("rmsnorm"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Kernels.image("embedding"));
        assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("RINGSERVE_KERNELS_DIR"), e.getMessage());

        Files.write(dir.resolve("embedding.fatbin"), new byte[] {4});
        assertTrue(Kernels.present());
    }

    @Test
    void anEmptyDirectoryMeansNoKernelsAndSaysWhere() {
        System.setProperty("ringserve.kernels.dir", dir.toString());
        assertEquals(List.of(), Kernels.names());
        assertFalse(Kernels.present());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Kernels.image("rmsnorm"));
        assertTrue(e.getMessage().contains("no CUDA kernels"), e.getMessage());
    }
}
