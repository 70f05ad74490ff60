//! Golden chunks of format version 1: one per encoding id (plain and zstd-flagged), written by
//! the v1 encoder. Every later build must decode them to the same values, whatever its encoder
//! now prefers. Regenerate the table only for a new format version, with
//! `cargo test -p strata-engine --lib generate_golden_chunks -- --ignored --nocapture`
//! (and keep the old table beside the new one).

use super::*;

/// Values of one golden case, generated deterministically.
enum Column {
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

/// A deterministic, well-mixed sequence (no RNG crate: its streams may change across versions).
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn walk(n: u64, start: i64, steps: i64) -> Vec<i64> {
    let mut x = start;
    (0..n)
        .map(|i| {
            x += (mix(i) % (2 * steps as u64 + 1)) as i64 - steps;
            x
        })
        .collect()
}

/// (case name, expected encoding id byte, values).
fn cases() -> Vec<(&'static str, u8, Column)> {
    let t0 = 1_767_225_600_000_000_000i64;
    let strings = |v: Vec<&str>| Column::Str(v.into_iter().map(str::to_owned).collect());
    let states = ["ok", "degraded", "down", "日本"];
    vec![
        ("i64 empty", id::EMPTY, Column::I64(vec![])),
        ("i64 const", id::INT_CONST, Column::I64(vec![-7; 20])),
        (
            "ts delta const",
            id::INT_DELTA_CONST,
            Column::I64((0..50).map(|i| t0 + i * 10_000_000_000).collect()),
        ),
        (
            "i64 delta varint",
            id::INT_DELTA,
            Column::I64(
                (0..40)
                    .map(|i| if i % 13 == 5 { 1 << 40 } else { i % 3 })
                    .collect(),
            ),
        ),
        (
            "ts dod varint",
            id::INT_DOD,
            Column::I64(
                (0..60)
                    .scan(t0, |t, i| {
                        *t += 10_000_000_000 + if i % 20 == 3 { 123_457 + i } else { 0 };
                        Some(*t)
                    })
                    .collect(),
            ),
        ),
        (
            "i64 raw",
            id::INT_RAW,
            Column::I64((0..12).map(|i| mix(i) as i64).collect()),
        ),
        (
            "i64 delta packed",
            id::INT_DELTA_PACKED,
            Column::I64(walk(60, 50, 3)),
        ),
        (
            "i64 dod packed",
            id::INT_DOD_PACKED,
            Column::I64(
                (0..200)
                    .map(|i| 5 + i * i + (mix(i as u64) % 3) as i64)
                    .collect(),
            ),
        ),
        (
            "ts ms jitter, zstd",
            id::INT_DELTA_PACKED | ZSTD_FLAG,
            Column::I64(
                (0..600)
                    .map(|i| t0 + i * 10_000_000_000 + (mix(i as u64 % 8) % 4) as i64 * 1_000_000)
                    .collect(),
            ),
        ),
        (
            "i64 raw, zstd",
            id::INT_RAW | ZSTD_FLAG,
            Column::I64((0..64).map(|i| mix(i % 8) as i64).collect()),
        ),
        ("f64 empty", id::EMPTY, Column::F64(vec![])),
        (
            "f64 const NaN payload",
            id::F64_CONST,
            Column::F64(vec![f64::from_bits(0x7ff8_dead_beef_0001); 9]),
        ),
        (
            "f64 decimal",
            id::F64_DECIMAL,
            Column::F64(
                walk(40, 5000, 40)
                    .iter()
                    .map(|&m| m as f64 / 100.0)
                    .collect(),
            ),
        ),
        (
            "f64 decimal, zstd",
            id::F64_DECIMAL | ZSTD_FLAG,
            Column::F64(
                (0..800)
                    .map(|i| (mix(i % 16) % 100_000) as f64 / 100.0)
                    .collect(),
            ),
        ),
        (
            "f64 gorilla",
            id::F64_GORILLA,
            Column::F64((0..20).map(|i| f64::from(i / 4) / 3.0).collect()),
        ),
        (
            "f64 gorilla, zstd",
            id::F64_GORILLA | ZSTD_FLAG,
            Column::F64(
                (0..60)
                    .map(|i| match i % 7 {
                        0 => f64::NAN,
                        1 => -0.0,
                        2 => f64::INFINITY,
                        _ => f64::from(i / 10) / 3.0,
                    })
                    .collect(),
            ),
        ),
        (
            "f64 shuffle, zstd",
            id::F64_SHUFFLE | ZSTD_FLAG,
            Column::F64(
                (0..300)
                    .map(|i| f64::from_bits(0x4059_0000_0000_0000 | (mix(i) & 0xffff_ffff_ffff)))
                    .collect(),
            ),
        ),
        ("bool empty", id::EMPTY, Column::Bool(vec![])),
        ("bool const", id::BOOL_CONST, Column::Bool(vec![true; 30])),
        (
            "bool bitmap",
            id::BOOL_BITMAP,
            Column::Bool((0..45).map(|i| mix(i).is_multiple_of(2)).collect()),
        ),
        (
            "bool rle",
            id::BOOL_RLE,
            Column::Bool((0..500).map(|i| (i / 90) % 2 == 0).collect()),
        ),
        ("str empty", id::EMPTY, Column::Str(vec![])),
        ("str const", id::STR_CONST, strings(vec!["é ✓"; 5])),
        (
            "str plain",
            id::STR_PLAIN,
            strings(vec!["", "a", "bc", "日本語", "", "x"]),
        ),
        (
            "str dict bit-packed",
            id::STR_DICT,
            strings((0..40).map(|i| states[(mix(i) % 4) as usize]).collect()),
        ),
        (
            "str dict rle",
            id::STR_DICT,
            strings((0..300).map(|i| states[(i / 60) % 4]).collect()),
        ),
        (
            "str plain, zstd",
            id::STR_PLAIN | ZSTD_FLAG,
            Column::Str(
                (0..40)
                    .map(|i| format!("request {i} from host-{}", i % 3))
                    .collect(),
            ),
        ),
        (
            "f64 decimal patched",
            id::F64_DECIMAL_PATCHED,
            Column::F64(
                walk(40, 5000, 40)
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| match i {
                        3 => f64::from_bits(0x7ff0_0000_0000_0002),
                        17 => -0.0,
                        _ => m as f64 / 100.0,
                    })
                    .collect(),
            ),
        ),
    ]
}

/// The v1 chunks, as lowercase hex, in the order of [`cases`].
const GOLDEN_V1: &[&str] = &[
    // i64 empty
    "00",
    // i64 const
    "010d",
    // ts delta const
    "028080d0dfbd94b986318090dfc04a",
    // i64 delta varint
    "03000102020302feffffffff3fffffffffff3f0202030202030202030202fcffffffff3ffdffffffff3f0203020203020203020203808080808040fbffffffff3f03020203020203",
    // ts dod varint
    "048090afa08895b986318090dfc04a1400ba60b960000000000000000000000000000000000000bc60bb60000000000000000000000000000000000000be60bd60000000000000000000000000000000",
    // i64 raw
    "05fe76371451362b648b92018c857f78c1d2941ceff5774d4946f1233e76464942ffe769fc24fe131cc46398a6ea6b291880d94d0952af24bf2cc9ee6a57d4ea43024a7c82057ffa46dd0ed3eab24380f7037e0cd65100344998c08143ca53e1b5",
    // i64 delta packed
    "06620105034ca9539a24f3985b5a713051c4d39cc1970461820eb400",
    // i64 dod packed
    "070e01010304807417424642625435445272272708244443616614561455424724362616607270653532646234634371617254606453364336342654336262455262626345334716165337236245454255165264182355261734525362707433537226462264534364",
    // ts ms jitter, zstd
    "8620f1dd0000a08092c4e1bd94b98631c0843d9a9c010389c0ddd80100b5522e0c",
    // i64 raw, zstd
    "856000014d02000404fe76371451362b648b92018c857f78c1d2941ceff5774d4946f1233e76464942ffe769fc24fe131cc46398a6ea6b291880d94d0952af24bf2cc9ee6a57d4ea43010040efa08628",
    // f64 empty
    "00",
    // f64 const NaN payload
    "100100efbeaddef87f",
    // f64 decimal
    "110306e04e014b073f392a9791932a8ea1d809a565206a1d4165cb1b98793011c4264db0903d6bf407a600",
    // f64 decimal, zstd
    "91601006c50100f4020306bc800a01f3bf08123019d59a1261b93db326afe095610519701006b5654600c23d70d05ca70000065eed9f21ec0100f6f6fcaa0c",
    // f64 gorilla
    "12000000000000000018beff555555555555544018000000000000080155555555555551000aaaaaaaaaaaaa00",
    // f64 gorilla, zstd
    "9220bb0d0400a4057ff800c06fffefff4ffe13ffefffdffec3fc025551402d5561fe012aaaaaaaaaaaa9003000a00eaae037fff7ffb0ff005554500755701bfffbffd20004801bfff7ffa40036e755587f801aab80df000d58a0012aaaaaaaaaaaac10006920008cd199013807c4e2704eabf6e414bb72f9a97666cac0ea52a8068090e0560b86",
    // f64 shuffle, zstd
    "93606008b53800a470fe8bd246ffc4802c02dd0398eed01697e5436819a3e5a4e0b3fb088f2b4b4dde571acf76f9708de2508598597b97610f90b698a6f4ff9fbd1c155677f03b576c424db163478e1d0c5032e6d0a2f99d03e57fe91a3b1013611c35fa8e6c91e4ceb27f75fc76df476b9938b3dd9d2e29aaf287d83add0bb40d88af8f2584ded9174e548a6ae4b17bf55e5d497ccd2a2b471970cfc3b7ab6be0e3843822e22999b7f6ea274db7e23073edb5699089060af2c78750faf2f589acbed9fd22ec596f9ca794936e08ea1009a0ed2dbf1f1e33d67fa357e0c6664dca203bffcd21a26755b495530e67b1a384c1bac68685f9741bf780f65e3d1e45dbd008a92d23b3252e6c0daea849e4e3650bc8699256f63cea052c3dbbf722a9089b9b49c420573a1ecca23de13cef33861e6ef7c7769294f1e763d9c94a0e7ec0691ca260f5cd957ab73b6adb28020d7f0b363e102556313061ef33d7dfec3b0ac0fa7dab39243a5abd05addceb5ba322c4517692ab93e802e3a9cf0a8cbfaf810044650bc11c6bdf8dbd82a2f4de5bd670253e995f6b90c26d3f5b16ecff0ee2974109bd25056670372505b14a464f582cd6d42d05276919bbff56f9deb56ebb1da4314288623b24bd7efaf07ad091339d471ba121522742cb343e39f0971d10c20e4065d88553e223b76b708ae0b64b17816e33a813a2b26f20e12134da7f7fca591f2ca4247f21301de839f52f6766b175e77bd8979f0b41cd4544006f782751a7d86249c8598dc79f62d4125939504ca9ab5ab151c04e07383e97e2771753bcac31f3c2608d6a4087209bb13bd3eca562252196bc49c42fd373493d7b2c5037011c2369984dee7cd30c8189bb4de878fc4041838eb82c813b07df86b88e1cfefff75e3610febd70d13fbb77d587635c613c9f5c85ee592770291f487ab82cb3121b5958b4c197a5795402fc5324640784813092953cdfa8f0d7fa2ed4cb1288ddc64d01a981c42334cf78d97a523d8d28fd1ea90a89673fa7b691afe37a93008e7092cc5c218ca527a739f9105c77462ac742708955dfd18445c077f69f5a84e0bb8b2f21ea1f5cbfef1832c87a845ef25452a6ae7d440c5ca9a88b20262506a10044378d9f690e02e352f17dd588f63661a7109ee12384b37b86736acf7b0bd53b5063fae7edf05212c67b4405cff5c0a74eea6cb990c95ee771d7f5a82691cee51ce1aec7523999e84ea642bd19513a9c4faa8008bd3ef22c523eb830bfcf5cee54e5dd7d8476e1a463148cef3efca6096a82ead643df105d0ff8b0d3b8b6e354addb475f1ed15372f53b8c76416a72ad51a940787ec84644726f8f75a4a766f94a62155ecee9c17e02e76ea0f5cf342fa488a35cda732a3c09ddb4cbf2ad81739599cc39a96ee55990b32805070356b6a580aaffa900c2756fe322bb7eb156d7fa9e0250e0a63397b16ce7cf1468227a884d36f54974a5f8ad1b313cdf435a5fdf691ddd7efb283f10b29b233908afa4d8416948233c3e7933fdd3dd8fa4737ba188dc98cbb5621820ada92280950bbb5f00061cadc49b2c4b4132ca1ab5ff12208e015852901dd0de2415a844eb776d2211631edb4b7d89f43a725b0512a16ef7e34d2935d42ef763f7ee4dcf134c315ffbd16b7711f49c1107e9fe6c9714f6e499e9e474d0f0be08e8e15c6275a77abeb6860ee35185f57624ea525705b251ca401d128e86ea2fd29ba2770d41f270358993e3f421ee574c3d56711c791e5f3a1b5256fb13f66e5d79e045d1b3f2f027943164c2a3b97844d0a01503195bfb15a95cf419c66f6e330daf73ed861e3c17061df1d5b892c0daddd4591c37d8bb2f9284998e28d2a3dbce4f76b037010bde5bca306c47ba7971c6606fe80b82bbb7c624f773bdae1cae5c6dad0a6a3b1421f1df3b9fd2f2eecc7144c04e29fa05c201e47b461c75d6326678a19a8004d333737607a3ddee93bc9780b02cc2baa8a0504f43395bdb65411f7f5bd3432414922cc6651c5ed18bac8147202a5f95ab2aaf75356151db0b0a0e1609255fbf8c240d69ead144faf3755a86f856608c375058d635d9528add0cd803f1da418493d1aaefcd53b1e643547ab8e15d13b8ea66367f7746fe6bafd47f43005316a63bbbd8107bceed7c91efab7339c897bdc6898ec37169c4728ae506eefe75996a2cf0149d2b2f73eeefd75441c3f70dd5d7264b6334cf8f5eea1a239b1c2cdc5cb0dd955426582a78bf313045cb1c31a0baf41b6f35b7d6d273a67df9fd25de5afec20ef0a9ffcbcf3835802ed1f1602af46018defb4300b080e59e32ff04b250be7b9a8d50b2aa814c6b68cc150088dd260149725724bb9425c3de6615389afa20abffa8d406e796490361626e40f9aabce930024913c36b8d3b0bad69a5f21bff4cecc58428f5fb17157bbd62e97c31ba85cbe7bee13a532bcb049732d3d6a57d6b03cbdb5cf8a2daaf54c0d98a6fe8b7c051fb86bd852b1f5248012e950b00cbcbd7075065f334e6d48a65c0d4cc7d19c2a300f91b7dd48165a654b637594002002840151246510115",
    // bool empty
    "00",
    // bool const
    "2001",
    // bool bitmap
    "21ed79c484aa05",
    // bool rle
    "22015a5a5a5a5a32",
    // str empty
    "00",
    // str const
    "3006c3a920e29c93",
    // str plain
    "31000102090001616263e697a5e69cace8aa9e78",
    // str dict bit-packed
    "320404060208646f776ee697a5e69cac6f6b64656772616465640002106a3621db7a595c44ec",
    // str dict rle
    "3204020804066f6b6465677261646564646f776ee697a5e69cac01003c013c023c033c003c",
    // str plain, zstd
    "b1608e02dd0300528610159039c30144d30995ff3f12f8474826d7cc99b6eb18da73da73da73dabb7ed7effa55aeca55b9ca704182060b0c68af022c0a82380924391c9d4539168a23318c0950a821f8f6efc0a3ea115c2802c8f73f03baaedb755daeebfabfd89bee5aaebcc5daf4acc5cacfd521d6cf9931c68c0f301a6a0a5003",
    // f64 decimal patched
    "14030203020000000000f07f0d000000000000008006e04e014b073f39328791932a8ea1d809a565204c594165cb1b98793011c4264db0903d6bf407a600",
];

fn encode(c: &Column) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Column::I64(v) => encode_i64(v, &mut out),
        Column::F64(v) => encode_f64(v, &mut out),
        Column::Bool(v) => encode_bool(v, &mut out),
        Column::Str(v) => encode_str(v, &mut out),
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("golden hex"))
        .collect()
}

#[test]
#[ignore = "generator: run only to write a new format version's golden table"]
fn generate_golden_chunks() {
    for (name, want, column) in cases() {
        let chunk = encode(&column);
        assert_eq!(chunk[0], want, "{name}: encoder picked 0x{:02x}", chunk[0]);
        println!("    // {name}\n    \"{}\",", hex(&chunk));
    }
}

#[test]
fn golden_v1_chunks_still_decode() {
    let cases = cases();
    assert_eq!(GOLDEN_V1.len(), cases.len(), "one golden chunk per case");
    for ((name, want, column), golden) in cases.into_iter().zip(GOLDEN_V1) {
        let b = unhex(golden);
        assert_eq!(b[0], want, "{name}: golden chunk has another id");
        let ok = match column {
            Column::I64(v) => {
                let mut out = Vec::new();
                decode_i64(&b, v.len(), &mut out).is_ok() && out == v
            }
            Column::F64(v) => {
                let mut out = Vec::new();
                decode_f64(&b, v.len(), &mut out).is_ok()
                    && out
                        .iter()
                        .map(|x| x.to_bits())
                        .eq(v.iter().map(|x| x.to_bits()))
            }
            Column::Bool(v) => {
                let mut out = Vec::new();
                decode_bool(&b, v.len(), &mut out).is_ok() && out == v
            }
            Column::Str(v) => {
                let mut out = Vec::new();
                decode_str(&b, v.len(), &mut out).is_ok() && out == v
            }
        };
        assert!(
            ok,
            "{name}: golden v1 chunk no longer decodes to its values"
        );
    }
}

/// Every single-byte corruption of every golden chunk (several bit patterns per byte), and every
/// truncation: an error or exactly `n` values, never a panic. Deterministic and exhaustive where
/// the random-input property tests only sample.
#[test]
fn mutated_golden_chunks_never_panic() {
    for ((name, _, column), golden) in cases().into_iter().zip(GOLDEN_V1) {
        let chunk = unhex(golden);
        let n = match &column {
            Column::I64(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
        };
        let decode_all = |b: &[u8]| {
            // Whatever the chunk's own type, feed it to every decoder.
            let (mut i, mut f, mut o, mut s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (ok, len) in [
                (decode_i64(b, n, &mut i).is_ok(), i.len()),
                (decode_f64(b, n, &mut f).is_ok(), f.len()),
                (decode_bool(b, n, &mut o).is_ok(), o.len()),
                (decode_str(b, n, &mut s).is_ok(), s.len()),
            ] {
                assert_eq!(len, if ok { n } else { 0 }, "{name}: partial output");
            }
        };
        for pos in 0..chunk.len() {
            for xor in [0x01u8, 0x02, 0x10, 0x80, 0xff, 0x7f] {
                let mut b = chunk.clone();
                b[pos] ^= xor;
                decode_all(&b);
            }
            decode_all(&chunk[..pos]);
        }
    }
}
