package io.ringserve.model.config;

import java.nio.file.Path;

/** The architectures ring-serve can run, one record each; {@link #load(Path)} dispatches on config.json. */
public sealed interface ModelConfig permits BailingMoeV2Config {

    /** The {@code architectures[0]} value this record describes. */
    String architecture();

    int vocabSize();

    int hiddenSize();

    int numHiddenLayers();

    int maxPositionEmbeddings();

    /** Reads {@code dir/config.json} and picks the record for its architecture. */
    static ModelConfig load(Path dir) {
        return BailingMoeV2Config.load(dir.resolve("config.json"));
    }
}
