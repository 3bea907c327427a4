#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

cs_status dynlib_open(dynlib *lib) {
    pthread_mutex_lock(&lib->lock);
    if (!lib->state) {
        /* RTLD_LOCAL: the symbols stay out of the global namespace, as they
         * would be if nothing else had asked for them. The handle is kept
         * for the process's life (the slots point into it). */
        void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        const char *why = h ? NULL : dlerror();
        for (int i = 0; h && !why && i < lib->n; i++) {
            *lib->slots[i] = dlsym(h, lib->names[i]);
            if (!*lib->slots[i]) why = lib->names[i];
        }
        if (why)
            snprintf(lib->error, sizeof lib->error, "%s need %s, which could not be loaded (%s)",
                     lib->purpose, lib->soname, why);
        lib->state = why ? 2 : 1;
    }
    int ok = lib->state == 1;
    pthread_mutex_unlock(&lib->lock);
    return ok ? CS_OK : error_set(CS_ERR_UNSUPPORTED, "%s", lib->error);
}
