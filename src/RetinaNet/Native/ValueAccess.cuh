__device__ __forceinline__ float load_f32(const void* p, unsigned long long i) { return ((const float*)p)[i]; }
__device__ __forceinline__ float half_bf16(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ float half_f16(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ float load_bf16(const void* p, unsigned long long i) { return half_bf16(((const unsigned short*)p)[i]); }
__device__ __forceinline__ float load_f16(const void* p, unsigned long long i) { return half_f16(((const unsigned short*)p)[i]); }
__device__ __forceinline__ unsigned short to_bf16(float v) { unsigned u = __float_as_uint(v); return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); }
__device__ __forceinline__ unsigned short to_f16(float v) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); return h; }
__device__ __forceinline__ void store_f32(void* p, unsigned long long i, float v) { ((float*)p)[i] = v; }
__device__ __forceinline__ void store_bf16(void* p, unsigned long long i, float v) { ((unsigned short*)p)[i] = to_bf16(v); }
__device__ __forceinline__ void store_f16(void* p, unsigned long long i, float v) { ((unsigned short*)p)[i] = to_f16(v); }
