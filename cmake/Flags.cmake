# Compiler flags for every target: warnings (as the target nfqtrace_warnings,
# linked privately by our own code only), sanitizers, and hardening.
include(CheckCXXCompilerFlag)
include(CheckPIESupported)

add_library(nfqtrace_warnings INTERFACE)
target_compile_options(nfqtrace_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough
  $<$<BOOL:${NFQTRACE_WERROR}>:-Werror>)

if(NFQTRACE_SANITIZE OR NFQTRACE_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(NFQTRACE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "NFQTRACE_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# What Debian's dpkg-buildflags give programs that parse hostile input:
# fortified libc calls, stack protector and clash protection, control-flow
# protection, PIE and full RELRO. Fortify needs optimisation, and would
# only get in the sanitizers' way.
if(NFQTRACE_HARDENING)
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)
  check_pie_supported()
  if(NOT NFQTRACE_SANITIZE AND NOT NFQTRACE_FUZZ)
    # Level 3 where glibc has it (2.34 on); older ones read it as 2.
    add_compile_options($<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE>
                        $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=3>)
  endif()
  foreach(flag -fstack-protector-strong -fstack-clash-protection -fcf-protection)
    string(MAKE_C_IDENTIFIER "NFQTRACE_HAS${flag}" has_flag)
    check_cxx_compiler_flag(${flag} ${has_flag})
    if(${has_flag})
      add_compile_options(${flag})
    endif()
  endforeach()
  add_link_options(-Wl,-z,relro,-z,now)
endif()
