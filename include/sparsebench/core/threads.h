#pragma once
// One thread knob for the whole library (OpenMP underneath).

namespace sb {

// Number of threads kernels may use. 0 (the default) means every core the process may run on.
void set_num_threads(int n);
int num_threads();
// CPUs this process may run on (affinity mask), at least 1.
int available_cpus();

}  // namespace sb
