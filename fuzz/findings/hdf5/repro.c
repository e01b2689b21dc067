/* Standalone reproducer of the libhdf5 findings (fuzz/findings/hdf5/README.md), without any
 * attnscope code: opens FILE read-only and reads every string attribute of every object with
 * the plain HDF5 C API, as any HDF5 reader would.
 *   cc -g -fsanitize=address -I/usr/include/hdf5/serial repro.c \
 *      -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -o repro && ./repro FILE */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

static herr_t read_attr(hid_t loc, const char* name, const H5A_info_t* info, void* data) {
    (void)info;
    (void)data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        hid_t s = H5Aget_space(a);
        hssize_t n = H5Sget_simple_extent_npoints(s);
        if (n > 0 && n < 1000000) {
            hid_t m = H5Tcopy(H5T_C_S1);
            H5Tset_size(m, H5T_VARIABLE);
            H5Tset_cset(m, H5Tget_cset(t)); /* else UTF-8 -> ASCII fails before the heap read */
            char** v = calloc((size_t)n, sizeof(char*));
            if (H5Aread(a, m, v) >= 0) {
                printf("  @%s = %.40s\n", name, v[0] ? v[0] : "(null)");
                H5Dvlen_reclaim(m, s, H5P_DEFAULT, v);
            }
            free(v);
            H5Tclose(m);
        }
        H5Sclose(s);
    }
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static herr_t visit(hid_t root, const char* path, const H5O_info_t* info, void* data) {
    (void)info;
    (void)data;
    printf("%s\n", path);
    hid_t o = H5Oopen(root, path, H5P_DEFAULT);
    if (o < 0) return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, read_attr, NULL);
    H5Oclose(o);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.h5\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    setvbuf(stdout, NULL, _IONBF, 0);
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        printf("H5Fopen failed cleanly\n");
        return 1;
    }
    /* The root's attributes by name, as attnscope's reader does first, then every object. */
    const char* root_attrs[] = {"schema", "schema_version", "created_by", "created_utc"};
    for (int i = 0; i < 4; ++i)
        if (H5Aexists(f, root_attrs[i]) > 0) read_attr(f, root_attrs[i], NULL, NULL);
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit, NULL);
    H5Fclose(f);
    printf("done\n");
    return 0;
}
