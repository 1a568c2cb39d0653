# cmake -DDOC=<markdown> -DCODE=<source> -P text_in_file.cmake
# Fails unless the source file appears, whole and unchanged, in the document:
# the example a reader copies is the one the tests compile and run.
file(READ "${DOC}" doc)
file(READ "${CODE}" code)
string(FIND "${doc}" "${code}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${DOC} does not show ${CODE} as it is: copy the file into its code block")
endif()
