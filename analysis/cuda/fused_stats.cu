// Fused attention statistics (see fused_stats_kernel.h for the contract).
//
// Work split: one CTA of 4 warps owns BM = 4·16·MT consecutive query rows of one (batch, head)
// and walks the key tiles of 64 keys that its rows can see (causal), double-buffered in shared
// memory with cp.async. Each warp keeps its 16·MT rows of q in registers as mma.sync A fragments
// and computes its slice of S = q·kᵀ with m16n8k16 tensor-core MMAs (bf16/fp16 in, fp32
// accumulate; fp32 inputs use exact scalar FMAs on the same fragment layout). The probabilities
// never leave registers:
//   P = 2^(S·scale·log2e − lse·log2e)
//   row sums (registers, reduced over the 4 lanes of a row once at the end): Σ P·log2 P,
//     Σ P·(t − s), Σ P·min(t − s, W) (tiles farther than W: W·Σ P), Σ_{s<k} P;
//   column sums: each thread adds its rows, a 3-step butterfly over the warp's 8 row groups
//     leaves every lane two finished columns, shared-memory atomics combine the 4 warps, and
//     warp 0 adds the tile's 64 columns to global memory (float2 atomics) after the next
//     barrier. The FAI sum equals the column sum on tiles wholly inside R and the horizon band,
//     is skipped on tiles wholly outside, and is masked per element only on the few tiles
//     crossing an edge.
// CTAs are issued longest-first (the last query block sees the most keys).
// Tried and dropped (H100, bench/RESULTS.md): 16 rows per warp with the MMAs of the next key tile
// beside the exponentials of the current one (two accumulator sets): 25.2 vs 18.6 ms per 8B
// layer at 32k; log-sum-exp from FA2 instead of cuDNN: +11 ms per layer.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "analysis/cuda/fused_stats_kernel.h"

namespace attnscope::analysis::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBN = 64;       // keys per tile
constexpr int kNT = kBN / 8;  // mma n-tiles per key tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const std::uint32_t (&a)[4],
                                         std::uint32_t b0, std::uint32_t b1) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        asm(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
}

// Four 8x8 b16 matrices from shared memory; lane l gives the row address of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
    const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    const int n = valid ? 16 : 0;  // 0: zero-fill
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n"); }

// 0: no FAI contribution, 1: FAI = column sum, 2: per-element mask.
__device__ __forceinline__ int fai_class(const FusedStatsParams& p, long long i_min,
                                         long long i_max, long long j0, long long j1) {
    const long long rb = p.rows_begin, re = p.rows_end, lo = p.fai_lo, hi = p.fai_hi;
    if (i_max < rb || i_min >= re || i_max - j0 < lo || i_min - j1 > hi) return 0;
    if (i_min >= rb && i_max < re && i_min - j1 >= lo && i_max - j0 <= hi) return 1;
    return 2;
}

// Reduce-scatter of v[16] (index nt·2 + e) over lane bits 4, 3, 2 (the 8 row groups): lane
// (g, t) ends with the warp's sums of columns g·8 + t·2 + {0, 1} in v[0], v[1].
__device__ __forceinline__ void butterfly16(float (&v)[16], int lane) {
    const unsigned full = 0xffffffffu;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const bool up = lane & 16;
        const float send = up ? v[i] : v[i + 8], keep = up ? v[i + 8] : v[i];
        v[i] = keep + __shfl_xor_sync(full, send, 16);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const bool up = lane & 8;
        const float send = up ? v[i] : v[i + 4], keep = up ? v[i + 4] : v[i];
        v[i] = keep + __shfl_xor_sync(full, send, 8);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const bool up = lane & 4;
        const float send = up ? v[i] : v[i + 2], keep = up ? v[i + 2] : v[i];
        v[i] = keep + __shfl_xor_sync(full, send, 4);
    }
}

__device__ __forceinline__ void atomic_add2(float* dst, float a, float b, bool pair_aligned,
                                            bool second_valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (pair_aligned && second_valid) {
        atomicAdd(reinterpret_cast<float2*>(dst), make_float2(a, b));
        return;
    }
#endif
    atomicAdd(dst, a);
    if (second_valid) atomicAdd(dst + 1, b);
}

template <typename T, int D, int MT, int MINB>
__global__ void __launch_bounds__(kThreads, MINB) fused_stats_kernel(const FusedStatsParams p) {
    constexpr bool kScalar = std::is_same_v<T, float>;
    constexpr int BM = kWarps * 16 * MT;
    constexpr int KS = D + 16 / int(sizeof(T));  // padded smem row (16 bytes): conflict-free
    constexpr int kChunk = 16 / int(sizeof(T));  // elements per 16-byte copy
    constexpr int kChunksPerRow = D / kChunk;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* ks_smem = reinterpret_cast<T*>(smem_raw);  // [2][kBN][KS]
    __shared__ float s_col[2][kBN], s_fai[2][kBN];

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int nqb = (p.len_q + BM - 1) / BM;
    const int qb = nqb - 1 - int(blockIdx.x);
    const int bh = int(blockIdx.y), b = bh / p.heads, h = bh % p.heads;
    const int hk = h / (p.heads / p.kv_heads);
    const T* qg = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
    const T* kg = static_cast<const T*>(p.k) + b * p.k_sb + hk * p.k_sh;
    const float* lse = p.lse + b * p.lse_sb + h * p.lse_sh;
    const int q_off = p.len_k - p.len_q;
    const int row0 = qb * BM;
    const int rows_here = min(BM, p.len_q - row0);
    const int i_min = q_off + row0, i_max = q_off + row0 + rows_here - 1;
    const int kb_last = i_max / kBN;
    const float scale2 = p.scale * kLog2e;
    const float wf = float(p.window);

    for (int i = tid; i < 2 * kBN; i += kThreads) {
        (&s_col[0][0])[i] = 0.f;
        (&s_fai[0][0])[i] = 0.f;
    }

    // This thread's rows: local row = row0 + warp·16·MT + mt·16 + g + 8·half.
    int ri[MT][2];     // slot of the row; -1 when the row does not exist (masks every key)
    float lse2[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
            const int r = row0 + warp * 16 * MT + mt * 16 + g + 8 * hf;
            const bool ok = r < p.len_q;
            ri[mt][hf] = ok ? q_off + r : -1;
            lse2[mt][hf] = ok ? lse[r] * kLog2e : 0.f;
        }

    // q as mma A fragments (16-bit types) or row pointers (fp32).
    std::uint32_t qf[kScalar ? 1 : MT][kScalar ? 1 : D / 16][4];
    const T* qrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
            const int r = row0 + warp * 16 * MT + mt * 16 + g + 8 * hf;
            qrow[mt][hf] = qg + std::int64_t(r < p.len_q ? r : 0) * p.q_ss;
        }
    if constexpr (!kScalar) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int hf = c & 1, col = ks * 16 + (c >> 1) * 8 + t * 2;
                    const bool ok = ri[mt][hf] >= 0;
                    qf[mt][ks][c] =
                        ok ? *reinterpret_cast<const std::uint32_t*>(qrow[mt][hf] + col) : 0u;
                }
    }

    auto load_tile = [&](int kb, int buf) {
        T* dst = ks_smem + buf * kBN * KS;
        for (int c = tid; c < kBN * kChunksPerRow; c += kThreads) {
            const int r = c / kChunksPerRow, ch = c % kChunksPerRow;
            const int key = kb * kBN + r;
            const bool ok = key < p.len_k;
            cp_async16(dst + r * KS + ch * kChunk,
                       kg + std::int64_t(ok ? key : 0) * p.k_ss + ch * kChunk, ok);
        }
        cp_async_commit();
    };

    float ent[MT][2] = {}, dist[MT][2] = {}, waad[MT][2] = {}, psum_far[MT][2] = {},
          sink[MT][2] = {};

    // Adds the finished column sums of tile kb (buffer kb & 1) to global memory; warp 0 only.
    auto flush = [&](int kb) {
        const int buf = kb & 1;
        const int c = lane * 2, j = kb * kBN + c;
        const float c0 = s_col[buf][c], c1 = s_col[buf][c + 1];
        const float f0 = s_fai[buf][c], f1 = s_fai[buf][c + 1];
        s_col[buf][c] = s_col[buf][c + 1] = 0.f;
        s_fai[buf][c] = s_fai[buf][c + 1] = 0.f;
        if (j >= p.len_k) return;
        const int cls = fai_class(p, i_min, i_max, kb * kBN, min(kb * kBN + kBN, p.len_k) - 1);
        const std::int64_t base = std::int64_t(bh) * p.len_k + j;
        const bool aligned = (base & 1) == 0, second = j + 1 < p.len_k;
        atomic_add2(p.col_sum + base, c0, c1, aligned, second);
        if (cls == 1) atomic_add2(p.fai_sum + base, c0, c1, aligned, second);
        if (cls == 2) atomic_add2(p.fai_sum + base, f0, f1, aligned, second);
    };

    load_tile(0, 0);
    for (int kb = 0; kb <= kb_last; ++kb) {
        const int buf = kb & 1;
        cp_async_wait_all();
        __syncthreads();
        if (kb > 0 && warp == 0) flush(kb - 1);
        if (kb < kb_last) load_tile(kb + 1, buf ^ 1);
        const T* kt = ks_smem + buf * kBN * KS;

        auto compute_s = [&](float (&acc)[MT][kNT][4]) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.f;

        if constexpr (!kScalar) {
            // ldmatrix.x4: matrices (keys nt·8.., d ks·16 + 0 / 8) and (keys (nt+1)·8.., same d)
            // are b0, b1 of n-tiles nt and nt + 1.
            const int mi = lane >> 3, r8 = lane & 7;
            const T* lbase = kt + ((mi >> 1) * 8 + r8) * KS + (mi & 1) * 8;
            // n-tile pairs outermost: the first columns finish early, so the scheduler can
            // overlap their exponentials with the remaining MMAs.
#pragma unroll
            for (int nt = 0; nt < kNT; nt += 2)
#pragma unroll
                for (int ks = 0; ks < D / 16; ++ks) {
                    std::uint32_t bf[4];
                    ldmatrix_x4(bf, lbase + nt * 8 * KS + ks * 16);
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma16816<T>(acc[mt][nt], qf[mt][ks], bf[0], bf[1]);
                        mma16816<T>(acc[mt][nt + 1], qf[mt][ks], bf[2], bf[3]);
                    }
                }
        } else {
#pragma unroll 4
            for (int d = 0; d < D; ++d) {
                float qv[MT][2];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int hf = 0; hf < 2; ++hf) qv[mt][hf] = float(qrow[mt][hf][d]);
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float kv = float(kt[(nt * 8 + t * 2 + e) * KS + d]);
#pragma unroll
                        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                            for (int hf = 0; hf < 2; ++hf)
                                acc[mt][nt][hf * 2 + e] = fmaf(qv[mt][hf], kv, acc[mt][nt][hf * 2 + e]);
                    }
            }
        }
        };

        // ---- probabilities and their sums, all in registers ----
        const int j0 = kb * kBN;
        const int j1 = min(j0 + kBN, p.len_k) - 1;
        const bool need_mask = (j0 + kBN - 1 > i_min) || (j0 + kBN > p.len_k) || (rows_here < BM);
        const bool far = !need_mask && (i_min - (j0 + kBN - 1) >= p.window);
        const bool sink_tile = j0 < p.sink_k;
        const int cls = fai_class(p, i_min, i_max, j0, j1);

        float colp[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) colp[i] = 0.f;
        // Interior tiles (most of them): no mask, every key farther than W, no sink keys.
        const bool fast = !need_mask && far && !sink_tile;
        // FAI on an edge tile: mask per element (recomputes P; rare).
        auto fai_edge = [&](const float (&acc)[MT][kNT][4]) {
            float faip[16];
#pragma unroll
            for (int i = 0; i < 16; ++i) faip[i] = 0.f;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    const long long ti = ri[mt][hf];
                    const bool in_r = ti >= 0 && ti >= p.rows_begin && ti < p.rows_end;
#pragma unroll
                    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            const long long j = j0 + nt * 8 + t * 2 + e;
                            const bool ok = in_r && j < p.len_k && j <= ti && ti - j >= p.fai_lo &&
                                            ti - j <= p.fai_hi;
                            const float pr = fast_exp2(
                                fmaf(acc[mt][nt][hf * 2 + e], scale2, -lse2[mt][hf]));
                            faip[nt * 2 + e] += ok ? pr : 0.f;
                        }
                }
            butterfly16(faip, lane);
            atomicAdd(&s_fai[buf][g * 8 + t * 2], faip[0]);
            atomicAdd(&s_fai[buf][g * 8 + t * 2 + 1], faip[1]);
        };

        const float tf2 = float(2 * t);
        // The MMAs sit inside each branch so that one basic block holds them and the
        // exponentials that consume them (the scheduler interleaves the two).
        if (fast) {
            float acc[MT][kNT][4];
            compute_s(acc);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    float sp = 0.f, spc = 0.f;  // Σ P and Σ P·(column offset without 2t)
#pragma unroll
                    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            const float x = fmaf(acc[mt][nt][hf * 2 + e], scale2, -lse2[mt][hf]);
                            const float pr = fast_exp2(x);
                            ent[mt][hf] = fmaf(pr, x, ent[mt][hf]);
                            sp += pr;
                            spc = fmaf(pr, float(nt * 8 + e), spc);
                            colp[nt * 2 + e] += pr;
                        }
                    // Σ P·(t − s) = (t − j0 − 2t')·Σ P − Σ P·(nt·8 + e): both terms positive,
                    // the first dominant (t − j0 >= 64 + W here).
                    const float rj = float(ri[mt][hf] - j0) - tf2;
                    dist[mt][hf] = fmaf(rj, sp, dist[mt][hf]) - spc;
                    psum_far[mt][hf] += sp;
                }
            if (cls == 2) fai_edge(acc);
        } else {
            float acc[MT][kNT][4];
            compute_s(acc);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    const float rj = float(ri[mt][hf] - j0) - tf2;  // t − j0 − 2t'
                    const int lim = min(ri[mt][hf], p.len_k - 1) - j0 - 2 * t;  // keep c <= lim
                    const int slim = p.sink_k - j0 - 2 * t;                      // sink: c < slim
#pragma unroll
                    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            const int c = nt * 8 + e;
                            float x = fmaf(acc[mt][nt][hf * 2 + e], scale2, -lse2[mt][hf]);
                            float pr = fast_exp2(x);
                            if (c > lim) pr = 0.f, x = 0.f;
                            ent[mt][hf] = fmaf(pr, x, ent[mt][hf]);
                            const float dd = rj - float(c);
                            dist[mt][hf] = fmaf(pr, dd, dist[mt][hf]);
                            waad[mt][hf] = fmaf(pr, fminf(dd, wf), waad[mt][hf]);
                            if (c < slim) sink[mt][hf] += pr;
                            colp[nt * 2 + e] += pr;
                        }
                }
            if (cls == 2) fai_edge(acc);
        }
        butterfly16(colp, lane);
        atomicAdd(&s_col[buf][g * 8 + t * 2], colp[0]);
        atomicAdd(&s_col[buf][g * 8 + t * 2 + 1], colp[1]);

    }
    __syncthreads();
    if (warp == 0) flush(kb_last);

    // ---- row results: reduce over the 4 lanes (t) that share a row ----
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
            float v[5] = {ent[mt][hf], dist[mt][hf], waad[mt][hf], psum_far[mt][hf], sink[mt][hf]};
#pragma unroll
            for (int i = 0; i < 5; ++i) {
                v[i] += __shfl_xor_sync(0xffffffffu, v[i], 1);
                v[i] += __shfl_xor_sync(0xffffffffu, v[i], 2);
            }
            const int r = row0 + warp * 16 * MT + mt * 16 + g + 8 * hf;
            if (t == 0 && r < p.len_q) {
                const std::int64_t o = std::int64_t(bh) * p.len_q + r;
                p.entropy[o] = -kLn2 * v[0];
                p.distance[o] = v[1];
                p.waad[o] = v[2] + wf * v[3];
                if (p.sink_mass) p.sink_mass[o] = v[4];
            }
        }
}

int g_variant = -1;  // -1: not chosen yet (ATTNSCOPE_FS_VARIANT, else 1)

template <typename T, int D, int MINB>
int launch_typed_minb(const FusedStatsParams& p, cudaStream_t stream) {
    constexpr int MT = D <= 128 ? 2 : 1;
    constexpr int BM = kWarps * 16 * MT;
    constexpr int KS = D + 16 / int(sizeof(T));
    const size_t smem = size_t(2) * kBN * KS * sizeof(T);
    auto kernel = fused_stats_kernel<T, D, MT, MINB>;
    static bool attr_set = false;  // per instantiation; harmless to repeat
    if (!attr_set) {
        const cudaError_t e =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return int(e);
        attr_set = true;
    }
    const dim3 grid((p.len_q + BM - 1) / BM, p.batch * p.heads);
    kernel<<<grid, kThreads, smem, stream>>>(p);
    return int(cudaGetLastError());
}

template <typename T, int D>
int launch_typed(const FusedStatsParams& p, cudaStream_t stream) {
    if (g_variant < 0) {
        const char* env = std::getenv("ATTNSCOPE_FS_VARIANT");
        g_variant = env && env[0] == '0' ? 0 : 1;
    }
    return g_variant == 1 ? launch_typed_minb<T, D, 3>(p, stream)
                          : launch_typed_minb<T, D, 2>(p, stream);
}

template <typename T>
int launch_dim(const FusedStatsParams& p, cudaStream_t stream) {
    switch (p.head_dim) {
        case 16: return launch_typed<T, 16>(p, stream);
        case 32: return launch_typed<T, 32>(p, stream);
        case 64: return launch_typed<T, 64>(p, stream);
        case 128: return launch_typed<T, 128>(p, stream);
        case 256: return launch_typed<T, 256>(p, stream);
        default: return int(cudaErrorInvalidValue);
    }
}

}  // namespace

bool fused_stats_compiled() { return true; }

void fused_stats_set_variant(int v) { g_variant = v == 0 ? 0 : 1; }

bool fused_stats_supports_head_dim(int d) {
    return d == 16 || d == 32 || d == 64 || d == 128 || d == 256;
}

int fused_stats_launch(const FusedStatsParams& p, ElemType type, void* stream) {
    if (p.len_q <= 0 || p.batch <= 0 || p.heads <= 0) return 0;
    const auto s = static_cast<cudaStream_t>(stream);
    switch (type) {
        case ElemType::kBFloat16: return launch_dim<__nv_bfloat16>(p, s);
        case ElemType::kFloat16: return launch_dim<__half>(p, s);
        case ElemType::kFloat32: return launch_dim<float>(p, s);
    }
    return int(cudaErrorInvalidValue);
}

const char* fused_stats_error(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // namespace attnscope::analysis::cuda
