package io.ringserve.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DecodeTrafficTest {

    @Test
    void ringMini20ReadsTheBytesOfModelMdSection8() {
        // MODEL.md §8: 2,222,134,272 B per decoded token at batch 1
        assertEquals(2_222_134_272L, DecodeTraffic.bytesPerToken(BailingMoeV2Config.ringMini20()));
    }

    @Test
    void ringLiteReadsTheBytesOfModelV1Section7() {
        // MODEL-V1.md §7: (2,494,154,752 + 2,048) × 2 B = 4,988,313,600 B
        assertEquals(4_988_313_600L, DecodeTraffic.bytesPerToken(BailingMoeConfig.ringLite()));
    }

    @Test
    void perMoeLayerAndDenseLayerMatchTheTable() {
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20();
        assertEquals(57_672_704L, DecodeTraffic.moeBytes(c));
        assertEquals(20_980_224L, DecodeTraffic.attentionBytes(c));
    }
}
