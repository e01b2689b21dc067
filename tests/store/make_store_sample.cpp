// Writes the archived example capture of the current schema major:
//   make_store_sample samples/store/capture-v1.h5
// Run it only when a new major is released (to add capture-vN.h5); never overwrite the file of
// a released major, since its purpose is to check that newer builds still read it.
#include <cstdio>
#include <exception>

#include "tests/store/store_sample.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
        return 2;
    }
    try {
        attnscope::store::sample_v1::write(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_store_sample: %s\n", e.what());
        return 1;
    }
    return 0;
}
